"""Output losses: loss values, errors φ = ∂L/∂t per output slot, and predictions
(docs/losses.md §1).

Every loss is backend-agnostic (NumPy or CuPy, taken from ``out.times``) and pure: inputs are never
mutated. Errors have the shape ``[B, N, S]`` of ``out.times``, its array module and dtype, and are 0
in empty slots. ``exact`` says whether the errors are the true gradient of ``loss`` (TTFS
cross-entropy, spike time) or a surrogate (spike counts, docs/losses.md §2).

Prediction modes (docs/losses.md §6): ``"reference"`` breaks ties and silence by the lowest index,
as the reference code does (an all-silent output predicts class 0, the 50 % floor of paper Fig. 3);
``"strict"`` returns −1 for a tie or silence, so it is never counted as correct.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings

import numpy as np

from .backend import array_module
from .spikes import SpikeTrains

PREDICT_MODES = ("reference", "strict")


def _check_out(out) -> None:
    if not isinstance(out, SpikeTrains):
        raise TypeError(f"out must be SpikeTrains, got {type(out).__name__}")


def _check_mode(mode) -> None:
    if mode not in PREDICT_MODES:
        raise ValueError(f"mode must be one of {PREDICT_MODES}, got {mode!r}")


def _real(name: str, value, low: float | None = None, strict: bool = False) -> float:
    """A finite real number (not bool), optionally bounded below; else TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value}")
    return value


def _labels(out: SpikeTrains, labels):
    """Validated class labels: integers of shape [B] in [0, N), in the array module of ``out``."""
    xp = out.xp
    if isinstance(labels, (list, tuple)):
        labels = np.asarray(labels)
    if not hasattr(labels, "dtype") or labels.dtype.kind not in "iu":
        raise TypeError(f"labels must be an integer array, got {getattr(labels, 'dtype', labels)}")
    if labels.shape != (out.batch_size,):
        raise ValueError(f"labels must have shape ({out.batch_size},), got {labels.shape}")
    labels = xp.asarray(labels)
    if out.batch_size and bool(((labels < 0) | (labels >= out.n_neurons)).any()):
        raise ValueError(f"labels must lie in [0, {out.n_neurons})")
    return labels.astype(xp.int64)


def _float_targets(out: SpikeTrains, targets, shape, allow_inf: bool):
    """Validated real targets of ``shape`` in the array module and dtype of ``out``."""
    xp = out.xp
    if isinstance(targets, (list, tuple)):
        targets = np.asarray(targets)
    if not hasattr(targets, "dtype") or targets.dtype.kind not in "fiu":
        got = getattr(targets, "dtype", type(targets).__name__)
        raise TypeError(f"targets must be a numeric array, got {got}")
    if targets.shape != shape:
        raise ValueError(f"targets must have shape {shape}, got {targets.shape}")
    targets = xp.asarray(targets).astype(out.dtype)  # always a new array: callers keep theirs
    if bool(xp.isnan(targets).any()):
        raise ValueError("targets contains NaN")
    bad = (targets == -xp.inf) if allow_inf else ~xp.isfinite(targets)  # CuPy-safe ops only
    if bool(bad.any()):
        raise ValueError("targets must be finite" + (" or +inf (no target)" if allow_inf else ""))
    return targets


def _emitted(out: SpikeTrains):
    """Boolean [B, N, S]: slot k holds an emitted spike (k < n)."""
    xp = out.xp
    slot = xp.arange(out.n_slots).reshape(1, 1, -1)
    return slot < out.counts[..., None]


def _select(score, mode: str):
    """Argmax of ``score`` [B, N] (lowest index on ties); strict: −1 on a tie or no valid entry.

    ``score`` is −inf where a neuron does not qualify (silent)."""
    xp = array_module(score)
    pred = xp.argmax(score, axis=1)
    if mode == "strict":
        best = score.max(axis=1, keepdims=True)
        tie = (score == best).sum(axis=1) > 1
        pred = xp.where(tie | (best[:, 0] == -xp.inf), -1, pred)
    return pred.astype(xp.int64)


def predict_count(out: SpikeTrains, mode: str = "reference"):
    """argmax_j n_j (docs/losses.md §1); a zero count never wins in strict mode."""
    _check_out(out)
    _check_mode(mode)
    counts = out.counts.astype(out.dtype)
    score = out.xp.where(out.counts > 0, counts, -out.xp.inf) if mode == "strict" else counts
    return _select(score, mode)


def predict_first_spike(out: SpikeTrains, mode: str = "reference"):
    """argmin_j t_j0, the FIRST slot only (the reference's TTFS predict is wrong for S > 1)."""
    _check_out(out)
    _check_mode(mode)
    return _select(-out.times[:, :, 0], mode)


class Loss:
    """Common interface; subclasses implement ``_loss_errors`` and ``predict``."""

    exact: bool = False

    def loss(self, out: SpikeTrains, target):
        """Per-sample loss, shape (B,)."""
        return self.loss_and_errors(out, target)[0]

    def errors(self, out: SpikeTrains, target):
        """φ = ∂L/∂t per output slot, shape [B, N, S], 0 in empty slots."""
        return self.loss_and_errors(out, target)[1]

    def loss_and_errors(self, out: SpikeTrains, target):
        """``(loss (B,), errors [B, N, S])`` in one pass."""
        _check_out(out)
        return self._loss_errors(out, target)

    def predict(self, out: SpikeTrains, mode: str = "reference"):
        raise NotImplementedError

    def stats(self, out: SpikeTrains, target) -> dict[str, int]:
        """Counts worth reporting next to the loss (silent labels, missing spikes, ...)."""
        return {}

    def check_reachable(self, n_max: int) -> bool:
        """False (with one warning per n_max) when a count target exceeds the buffer n_max."""
        return True

    def to_dict(self) -> dict:
        raise NotImplementedError

    def _warn_unreachable_once(self, n_max: int, message: str) -> None:
        warned = self.__dict__.setdefault("_warned", set())
        if n_max not in warned:
            warned.add(n_max)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def __repr__(self) -> str:
        d = self.to_dict()
        args = ", ".join(f"{k}={v!r}" for k, v in d.items() if k != "type")
        return f"{d['type']}({args})"


def _count_loss_errors(out: SpikeTrains, y):
    """½ Σ_j (y_j − n_j)² and the surrogate φ_jk = y_j − n_j on emitted spikes
    (docs/losses.md §2)."""
    xp = out.xp
    diff = y - out.counts.astype(out.dtype)  # paper Eq. 17: "∂L/∂n = y − n" (really −∂L/∂n)
    loss = 0.5 * (diff * diff).sum(axis=1)
    errors = xp.where(_emitted(out), diff[..., None], xp.zeros((), out.dtype)).astype(out.dtype)
    return loss.astype(out.dtype), errors


class SpikeCount(Loss):
    """L = ½ Σ_j (y_j − n_j)² with real count targets y of shape [B, N].

    Surrogate gradient (``exact = False``): n is piecewise constant in the spike times; BATS sets
    ∂n_j/∂t_jk := −1, so every emitted spike of neuron j gets φ = y_j − n_j (paper Eq. 17, whose
    "∂L/∂n = y − n" is really −∂L/∂n, docs/losses.md §2). A silent neuron receives no error.
    """

    exact = False

    def _loss_errors(self, out, targets):
        y = _float_targets(out, targets, (out.batch_size, out.n_neurons), allow_inf=False)
        if out.batch_size and bool((y > out.n_slots).any()):
            self._warn_unreachable_once(
                out.n_slots,
                f"SpikeCount: a target exceeds the spike buffer S = {out.n_slots}; counts "
                "saturate at S, so it cannot be reached",
            )
        return _count_loss_errors(out, y)

    def predict(self, out, mode="reference"):
        """argmax_j n_j; strict: −1 on a tie or when every neuron is silent."""
        return predict_count(out, mode)

    def check_reachable(self, n_max: int, targets=None) -> bool:
        """False (warning once per n_max) when some target in ``targets`` exceeds ``n_max``."""
        if targets is None:
            return True
        ok = not bool((targets > n_max).any())
        if not ok:
            self._warn_unreachable_once(
                n_max, f"SpikeCount: a target exceeds n_max = {n_max} and cannot be reached"
            )
        return ok

    def to_dict(self) -> dict:
        return {"type": "SpikeCount"}


class SpikeCountClass(Loss):
    """Spike-count classification: y_j = y_true for the label neuron, y_false for the others.

    L = ½ Σ_j (y_j − n_j)²; surrogate errors φ_jk = y_j − n_j on every emitted spike (docs/losses.md
    §2, paper Eq. 17 sign note): ``exact = False``. Predicts argmax_j n_j.
    """

    exact = False

    def __init__(self, y_true: float = 15, y_false: float = 3):
        self.y_true = _real("y_true", y_true, low=0.0)
        self.y_false = _real("y_false", y_false, low=0.0)

    def _loss_errors(self, out, labels):
        labels = _labels(out, labels)
        self.check_reachable(out.n_slots)
        xp = out.xp
        onehot = labels[:, None] == xp.arange(out.n_neurons)[None, :]
        y = xp.where(onehot, self.y_true, self.y_false).astype(out.dtype)
        return _count_loss_errors(out, y)

    def predict(self, out, mode="reference"):
        """argmax_j n_j; strict: −1 on a tie or when every neuron is silent."""
        return predict_count(out, mode)

    def check_reachable(self, n_max: int) -> bool:
        """False, with one RuntimeWarning per n_max, when y_true or y_false exceeds n_max."""
        ok = max(self.y_true, self.y_false) <= n_max
        if not ok:
            self._warn_unreachable_once(
                n_max,
                f"SpikeCountClass: target {max(self.y_true, self.y_false):g} exceeds n_max = "
                f"{n_max}; counts saturate at n_max, so it cannot be reached",
            )
        return ok

    def to_dict(self) -> dict:
        return {"type": "SpikeCountClass", "y_true": self.y_true, "y_false": self.y_false}


class TTFSCrossEntropy(Loss):
    """Softmax cross-entropy on first-spike times, s_j = −t_j0/τ_L (docs/losses.md §3).

    L = LSE_j(s_j) − s_label, computed as (t_label − t_min)/τ_L + log Σ_j e^{−(t_j0 − t_min)/τ_L},
    so no exponent is ever positive and very late spikes cannot overflow. Exact gradient
    (``exact = True``): φ_j0 = (1[j = label] − p_j)/τ_L, later slots 0.

    Silent cases: label neuron silent → L = +inf, φ_j0 = −p_j/τ_L for the neurons that fire (the
    limit as t_label → ∞); every neuron silent → L = +inf, φ = 0. Never NaN.
    """

    exact = True

    def __init__(self, tau_l: float = 0.005):
        self.tau_l = _real("tau_l", tau_l, low=0.0, strict=True)

    def _loss_errors(self, out, labels):
        labels = _labels(out, labels)
        xp, dt = out.xp, out.dtype
        t0 = out.times[:, :, 0]
        fired = xp.isfinite(t0)
        any_fired = fired.any(axis=1)
        t_min = xp.where(any_fired, xp.where(fired, t0, xp.inf).min(axis=1), 0).astype(dt)
        shifted = xp.where(fired, t0 - t_min[:, None], 0)  # ≥ 0: s_j − max_j s_j = −shifted/τ_L
        e = xp.where(fired, xp.exp(-shifted / dt.type(self.tau_l)), 0).astype(dt)
        z = e.sum(axis=1)
        z = xp.where(any_fired, z, 1).astype(dt)
        p = e / z[:, None]
        rows = xp.arange(out.batch_size)
        t_label = t0[rows, labels]
        # label silent (or all silent): t_label = +inf → L = +inf, never inf − inf
        loss = (t_label - t_min) / dt.type(self.tau_l) + xp.log(z)
        onehot = labels[:, None] == xp.arange(out.n_neurons)[None, :]
        phi0 = xp.where(fired, (onehot.astype(dt) - p) / dt.type(self.tau_l), 0)
        errors = xp.zeros(out.times.shape, dtype=dt)
        errors[:, :, 0] = phi0
        return loss.astype(dt), errors

    def predict(self, out, mode="reference"):
        """argmin_j of the first spike t_j0; strict: −1 on a tie or when all are silent."""
        return predict_first_spike(out, mode)

    def stats(self, out, labels) -> dict[str, int]:
        """``silent_label``: samples with a silent label neuron; ``all_silent``: no output spike."""
        _check_out(out)
        labels = _labels(out, labels)
        fired = out.counts > 0
        label_fired = fired[out.xp.arange(out.batch_size), labels]
        return {
            "silent_label": int((~label_fired).sum()),
            "all_silent": int((~fired.any(axis=1)).sum()),
        }

    def to_dict(self) -> dict:
        return {"type": "TTFSCrossEntropy", "tau_l": self.tau_l}


class SpikeTime(Loss):
    """L = ½ Σ_{(j,k)∈K} (t_jk − y_jk)² with target times y of shape [B, N, S] (docs/losses.md §4).

    +inf in ``targets`` means "no target for this slot". K holds the slots with a finite target
    and an emitted spike; a missing spike (finite target, k ≥ n_j) gets no error and is counted
    in :meth:`stats` (``missing``). Exact gradient on K (``exact = True``): φ_jk = t_jk − y_jk.
    Predicts argmin_j t_j0.
    """

    exact = True

    def _loss_errors(self, out, targets):
        y = _float_targets(out, targets, out.times.shape, allow_inf=True)
        xp = out.xp
        k = _emitted(out) & xp.isfinite(y)
        diff = xp.where(k, out.times - xp.where(k, y, 0), 0).astype(out.dtype)
        return (0.5 * (diff * diff).sum(axis=(1, 2))).astype(out.dtype), diff

    def predict(self, out, mode="reference"):
        """argmin_j of the first spike t_j0; strict: −1 on a tie or when all are silent."""
        return predict_first_spike(out, mode)

    def stats(self, out, targets) -> dict[str, int]:
        """``missing``: finite targets without an emitted spike; ``matched``: |K|."""
        _check_out(out)
        y = _float_targets(out, targets, out.times.shape, allow_inf=True)
        finite = out.xp.isfinite(y)
        emitted = _emitted(out)
        return {
            "missing": int((finite & ~emitted).sum()),
            "matched": int((finite & emitted).sum()),
        }

    def to_dict(self) -> dict:
        return {"type": "SpikeTime"}


LOSSES = {
    "SpikeCount": SpikeCount,
    "SpikeCountClass": SpikeCountClass,
    "TTFSCrossEntropy": TTFSCrossEntropy,
    "SpikeTime": SpikeTime,
}


def loss_from_dict(d: dict) -> Loss:
    """Rebuild a loss from :meth:`Loss.to_dict`; unknown types or keys are a ValueError."""
    if not isinstance(d, dict):
        raise TypeError(f"d must be a dict, got {type(d).__name__}")
    kind = d.get("type")
    if kind not in LOSSES:
        raise ValueError(f"d['type'] must be one of {sorted(LOSSES)}, got {kind!r}")
    kwargs = {k: v for k, v in d.items() if k != "type"}
    unknown = set(kwargs) - set(inspect.signature(LOSSES[kind]).parameters)
    if unknown:
        raise ValueError(f"d has unknown keys for {kind}: {sorted(unknown)}")
    return LOSSES[kind](**kwargs)
