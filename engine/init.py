"""Weight initialisers: U(low, high) and N(mean, std^2) (docs/training.md §3, §4)."""

from __future__ import annotations

import math

import numpy as np

from .spikes import resolve_dtype


def _finite(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _check_call(rng, shape):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must be non-negative, got {shape}")
    return shape


class Uniform:
    """Weights drawn i.i.d. from U(low, high)."""

    def __init__(self, low: float = -1.0, high: float = 1.0):
        self.low = _finite("low", low)
        self.high = _finite("high", high)
        if not self.low <= self.high:
            raise ValueError(f"low must be <= high, got low={self.low}, high={self.high}")

    def init(self, rng: np.random.Generator, shape, dtype="float64") -> np.ndarray:
        shape = _check_call(rng, shape)
        return rng.uniform(self.low, self.high, size=shape).astype(resolve_dtype(dtype))

    def to_dict(self) -> dict:
        return {"kind": "uniform", "low": self.low, "high": self.high}

    def __eq__(self, other) -> bool:
        return isinstance(other, Uniform) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Uniform({self.low}, {self.high})"


class Normal:
    """Weights drawn i.i.d. from N(mean, std^2); std = 0 gives every weight equal to mean."""

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        self.mean = _finite("mean", mean)
        self.std = _finite("std", std)
        if self.std < 0:
            raise ValueError(f"std must be >= 0, got {self.std}")

    def init(self, rng: np.random.Generator, shape, dtype="float64") -> np.ndarray:
        shape = _check_call(rng, shape)
        return rng.normal(self.mean, self.std, size=shape).astype(resolve_dtype(dtype))

    def to_dict(self) -> dict:
        return {"kind": "normal", "mean": self.mean, "std": self.std}

    def __eq__(self, other) -> bool:
        return isinstance(other, Normal) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Normal({self.mean}, {self.std})"


_KINDS = {"uniform": (Uniform, ("low", "high")), "normal": (Normal, ("mean", "std"))}


def initializer_from_dict(d: dict):
    """Inverse of ``to_dict()``; ValueError for an unknown kind or missing field."""
    if not isinstance(d, dict):
        raise TypeError(f"init must be a dict, got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"init kind must be one of {sorted(_KINDS)}, got {kind!r}")
    cls, fields = _KINDS[kind]
    missing = [f for f in fields if f not in d]
    if missing:
        raise ValueError(f"init of kind {kind!r} is missing {missing}")
    return cls(*(d[f] for f in fields))
