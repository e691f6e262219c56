"""Layer descriptions. ``Dense``: a fully connected CuBa LIF layer (method.md §1)."""

from __future__ import annotations

import math

import numpy as np

from .init import Normal, Uniform, initializer_from_dict


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


class Dense:
    """Fully connected LIF layer with exact spike times.

    ``n`` neurons, synaptic constant ``tau_s`` [s] (membrane ``tau = 2 tau_s``), threshold
    ``theta``, reset amount ``reset`` (Δθ, default ``theta``), spike buffer ``n_max`` (S).
    """

    kind = "dense"

    def __init__(self, n, tau_s, theta, reset=None, n_max=30, init=None):
        self.n = _count("n", n)
        self.tau_s = _positive("tau_s", tau_s)
        self.theta = _positive("theta", theta)
        self.reset = self.theta if reset is None else _positive("reset", reset)
        self.n_max = _count("n_max", n_max)
        init = Uniform(-1.0, 1.0) if init is None else init
        if not isinstance(init, (Uniform, Normal)):
            raise TypeError(f"init must be Uniform or Normal, got {type(init).__name__}")
        self.init = init

    @property
    def tau(self) -> float:
        """Membrane time constant, tau = 2 tau_s (hard constraint of the closed form)."""
        return 2.0 * self.tau_s

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "n": self.n,
            "tau_s": self.tau_s,
            "theta": self.theta,
            "reset": self.reset,
            "n_max": self.n_max,
            "init": self.init.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Dense:
        if not isinstance(d, dict):
            raise TypeError(f"layer must be a dict, got {type(d).__name__}")
        if d.get("kind", cls.kind) != cls.kind:
            raise ValueError(f"layer kind must be {cls.kind!r}, got {d.get('kind')!r}")
        missing = [k for k in ("n", "tau_s", "theta") if k not in d]
        if missing:
            raise ValueError(f"layer is missing {missing}")
        init = d.get("init")
        return cls(
            d["n"],
            d["tau_s"],
            d["theta"],
            reset=d.get("reset"),
            n_max=d.get("n_max", 30),
            init=None if init is None else initializer_from_dict(init),
        )

    def __eq__(self, other) -> bool:
        return isinstance(other, Dense) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return (
            f"Dense(n={self.n}, tau_s={self.tau_s}, theta={self.theta}, reset={self.reset}, "
            f"n_max={self.n_max}, init={self.init!r})"
        )
