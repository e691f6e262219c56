"""Exact event-based simulation and BATS gradients."""

from .init import Normal, Uniform
from .layers import Dense
from .network import ErrorComponents, Network
from .spikes import SpikeTrains

__all__ = ["Dense", "ErrorComponents", "Network", "Normal", "SpikeTrains", "Uniform"]
