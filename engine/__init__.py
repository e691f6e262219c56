"""Exact event-based simulation and BATS gradients."""

import os

# Numba's OpenMP threads must sleep, not spin, while waiting: the app trains several sessions at
# once on shared cores, and spinning workers then starve each other (measured 3x slower under
# load). Read by the OpenMP runtime when Numba first loads it; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .init import Normal, Uniform  # noqa: E402
from .layers import Conv2D, Dense, Pool2D
from .losses import SpikeCount, SpikeCountClass, SpikeTime, TTFSCrossEntropy, loss_from_dict
from .network import ErrorComponents, Network
from .optim import SGD, Adam, LRSchedule, clip_grad_norm
from .spikes import SpikeTrains

__all__ = [
    "SGD",
    "Adam",
    "Conv2D",
    "Dense",
    "ErrorComponents",
    "LRSchedule",
    "Network",
    "Normal",
    "Pool2D",
    "SpikeCount",
    "SpikeCountClass",
    "SpikeTime",
    "SpikeTrains",
    "TTFSCrossEntropy",
    "Uniform",
    "clip_grad_norm",
    "loss_from_dict",
]
