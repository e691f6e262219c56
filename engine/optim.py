"""Optimisers, learning-rate schedule and gradient clipping (docs/training.md §2).

Optimisers update a list of weight arrays (NumPy or CuPy) in place from gradients already averaged
by the caller. ``state_dict()`` holds only strings, numbers and NumPy arrays, so a checkpoint is an
``.npz`` of the arrays plus JSON of the rest (no pickle).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .backend import array_module, to_numpy


def _real(name: str, value, low: float, high: float | None = None, open_low=True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    bad_low = value <= low if open_low else value < low
    if not math.isfinite(value) or bad_low or (high is not None and value >= high):
        rng = f"{'(' if open_low else '['}{low}, {high if high is not None else 'inf'})"
        raise ValueError(f"{name} must be finite and in {rng}, got {value}")
    return value


def _check_pairs(weights, grads) -> None:
    """Same length and shapes, float weights, finite gradients; checked before any update."""
    if not isinstance(weights, (list, tuple)) or not isinstance(grads, (list, tuple)):
        raise TypeError("weights and grads must be lists of arrays")
    if len(weights) != len(grads):
        raise ValueError(f"grads has {len(grads)} arrays, weights has {len(weights)}")
    for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
        if getattr(w, "dtype", None) is None or w.dtype.kind != "f":
            raise TypeError(f"weights[{i}] must be a float array")
        shape = getattr(g, "shape", None)
        if shape != w.shape:
            raise ValueError(f"grads[{i}] has shape {shape}, expected {w.shape}")
        if not bool(array_module(g).isfinite(g).all()):
            raise ValueError(f"grads[{i}] contains NaN or inf")


class _LearningRate:
    """A validated learning rate ``lr`` (> 0), shared by the optimisers."""

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = _real("lr", value, 0.0)


class SGD(_LearningRate):
    """Plain gradient descent: ΔW = −λ·G (docs/training.md §2)."""

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, weights: list, grads: list) -> None:
        """W ← W − λ·G for every pair, in place."""
        _check_pairs(weights, grads)
        for w, g in zip(weights, grads, strict=True):
            w -= w.dtype.type(self.lr) * g

    def state_dict(self) -> dict:
        return {"type": "SGD", "lr": self.lr}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; the optimiser is untouched on any error."""
        if not isinstance(state, dict) or state.get("type") != "SGD":
            raise ValueError("state must be a dict from SGD.state_dict() (type 'SGD')")
        self.lr = state["lr"]


class Adam(_LearningRate):
    """Adam with bias correction (docs/training.md §2):

    m ← β1·m + (1−β1)·G;  v ← β2·v + (1−β2)·G²;  t ← t + 1;
    m̂ = m/(1−β1^t);  v̂ = v/(1−β2^t);  ΔW = −λ·m̂/(√v̂ + ε).
    """

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = lr
        self.beta1 = _real("beta1", beta1, 0.0, 1.0, open_low=False)
        self.beta2 = _real("beta2", beta2, 0.0, 1.0, open_low=False)
        self.eps = _real("eps", eps, 0.0)
        self.t = 0
        self.m: list = []
        self.v: list = []

    def step(self, weights: list, grads: list) -> None:
        """One Adam update of every weight array, in place (moments created on the first step)."""
        _check_pairs(weights, grads)
        if self.m and [m.shape for m in self.m] != [w.shape for w in weights]:
            raise ValueError("weights do not match the optimiser state (shapes differ)")
        if not self.m:
            self.m = [array_module(w).zeros_like(w) for w in weights]
            self.v = [array_module(w).zeros_like(w) for w in weights]
        self.t += 1
        c1 = 1.0 - self.beta1**self.t
        c2 = 1.0 - self.beta2**self.t
        for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
            xp, f = array_module(w), w.dtype.type
            if _fusable(w, g, self.m[i], self.v[i]):
                from .optim_kernels import adam_update  # noqa: PLC0415 - Numba loads lazily

                b1, b2 = self.beta1, self.beta2
                adam_update(w, g, self.m[i], self.v[i], f(b1), f(1.0 - b1), f(b2), f(1.0 - b2),
                            f(self.lr), f(c1), f(c2), f(self.eps))  # fmt: skip
                continue
            m = xp.asarray(self.m[i], dtype=w.dtype)  # moments follow the weights' backend
            v = xp.asarray(self.v[i], dtype=w.dtype)
            m = f(self.beta1) * m + f(1.0 - self.beta1) * g
            v = f(self.beta2) * v + f(1.0 - self.beta2) * (g * g)
            w -= f(self.lr) * (m / f(c1)) / (xp.sqrt(v / f(c2)) + f(self.eps))
            self.m[i], self.v[i] = m, v

    def state_dict(self) -> dict:
        """Scalars plus moment arrays ``m.<i>`` / ``v.<i>`` as NumPy arrays."""
        state = {
            "type": "Adam",
            "lr": self.lr,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "eps": self.eps,
            "t": self.t,
            "n_params": len(self.m),
        }
        for i, (m, v) in enumerate(zip(self.m, self.v, strict=True)):
            state[f"m.{i}"] = to_numpy(m).copy()
            state[f"v.{i}"] = to_numpy(v).copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` (values may come back as 0-d arrays from an npz).

        Everything is validated first; the optimiser is untouched on any error."""
        if not isinstance(state, dict) or str(state.get("type")) != "Adam":
            raise ValueError("state must be a dict from Adam.state_dict() (type 'Adam')")
        try:
            scal = {k: np.asarray(state[k]).item() for k in ("lr", "beta1", "beta2", "eps")}
            t, n = (np.asarray(state[k]).item() for k in ("t", "n_params"))
        except KeyError as exc:
            raise ValueError(f"state is missing {exc}") from None
        if not isinstance(t, int) or t < 0 or not isinstance(n, int) or n < 0:
            raise ValueError("state['t'] and state['n_params'] must be non-negative integers")
        new = Adam(**scal)  # validates lr, betas and eps
        for i in range(n):
            try:
                m, v = np.asarray(state[f"m.{i}"]), np.asarray(state[f"v.{i}"])
            except KeyError as exc:
                raise ValueError(f"state is missing {exc}") from None
            if m.shape != v.shape or m.dtype.kind != "f" or v.dtype.kind != "f":
                raise ValueError(f"state['m.{i}'] and state['v.{i}'] must be float arrays alike")
            if not (np.isfinite(m).all() and np.isfinite(v).all() and (v >= 0).all()):
                raise ValueError(f"state['m.{i}'] / state['v.{i}'] must be finite with v >= 0")
            new.m.append(m.copy())
            new.v.append(v.copy())
        if (t == 0) != (n == 0):
            raise ValueError("state['t'] and the moment arrays disagree")
        self.__dict__.update(new.__dict__, t=t)


class LRSchedule:
    """Step decay (docs/training.md §2): at epoch e > 0 with e mod ``every`` = 0, λ ← max(γ·λ,
    λ_min).

    :meth:`lr` is the closed form of that recursion, a pure function of (base_lr, epoch):
    λ_e = base_lr if e < every, else max(base_lr·γ^⌊e/every⌋, λ_min) (exact for 0 < γ ≤ 1).
    """

    def __init__(self, factor: float = 1.0, every: int = 10, floor: float = 0.0):
        self.factor = _real("factor", factor, 0.0)
        if self.factor > 1.0:
            raise ValueError(f"factor must be in (0, 1], got {self.factor}")
        if isinstance(every, bool) or not isinstance(every, numbers.Integral) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.every = int(every)
        self.floor = _real("floor", floor, 0.0, open_low=False)

    def lr(self, base_lr: float, epoch: int) -> float:
        """The learning rate in force during ``epoch`` (0-based)."""
        base_lr = _real("base_lr", base_lr, 0.0)
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        decays = int(epoch) // self.every
        if decays == 0:
            return base_lr
        return max(base_lr * self.factor**decays, self.floor)

    def to_dict(self) -> dict:
        return {"factor": self.factor, "every": self.every, "floor": self.floor}


def clip_grad_norm(grads: list, max_norm: float) -> tuple[list, float]:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``
    (docs/implementation.md §3).

    Returns ``(new list of arrays, norm before clipping)``; the inputs are not modified. A
    non-finite norm leaves the gradients unscaled (the caller sees it in the returned norm)."""
    max_norm = _real("max_norm", max_norm, 0.0)
    if not isinstance(grads, (list, tuple)):
        raise TypeError("grads must be a list of arrays")
    norm = math.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
    if not math.isfinite(norm) or norm <= max_norm:
        return [g.copy() for g in grads], norm
    scale = max_norm / norm
    return [g * g.dtype.type(scale) for g in grads], norm


def _fusable(w, g, m, v) -> bool:
    """True when the fused CPU kernel applies: NumPy arrays of one float dtype, C-contiguous."""
    arrays = (w, g, m, v)
    return (
        all(type(a) is np.ndarray and a.dtype == w.dtype and a.flags.c_contiguous for a in arrays)
        and w.dtype.kind == "f"
        and w.flags.writeable
    )
