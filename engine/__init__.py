"""Exact event-based simulation and BATS gradients."""

from .init import Normal, Uniform
from .layers import Dense
from .losses import SpikeCount, SpikeCountClass, SpikeTime, TTFSCrossEntropy, loss_from_dict
from .network import ErrorComponents, Network
from .optim import SGD, Adam, LRSchedule, clip_grad_norm
from .spikes import SpikeTrains

__all__ = [
    "SGD",
    "Adam",
    "Dense",
    "ErrorComponents",
    "LRSchedule",
    "Network",
    "Normal",
    "SpikeCount",
    "SpikeCountClass",
    "SpikeTime",
    "SpikeTrains",
    "TTFSCrossEntropy",
    "Uniform",
    "clip_grad_norm",
    "loss_from_dict",
]
