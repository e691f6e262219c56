"""Gradient check: the exact BATS gradient against central finite differences (docs/backward.md §8).

For a few chosen weights w of a network and one batch, compare ∂L/∂w from ``Network.backward`` with
(L(w + ε) − L(w − ε)) / 2ε, in float64 on the CPU, on a private copy of the network. The map
w ↦ L is only piecewise smooth: a perturbation that changes any spike count (a spike appears,
disappears or is truncated) crosses a kink, so it is skipped and the reason is recorded.

Which function is checked (docs/losses.md §5):
- TTFS cross-entropy and spike-time losses give a true gradient: the loss itself is checked.
- Spike-count losses give a surrogate (∂n/∂t := −1, docs/losses.md §2), not a gradient: their finite
  difference is 0 wherever the counts do not change. The check then uses the linear probe
  L = Σ r_jk·t_jk with fixed random r (docs/backward.md §8), which tests the same backward pass, and
  the surrogate value is reported beside it, labelled as such.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .backend import to_numpy
from .spikes import SpikeTrains


@dataclass(frozen=True)
class WeightCheck:
    """One weight: layer index (0 = first trainable layer), post j, pre i and the comparison."""

    layer: int
    post: int
    pre: int
    weight: float
    exact: float  # ∂L/∂w of the checked function (loss or probe), from the backward pass
    fd: float  # central finite difference; nan when skipped
    abs_error: float  # |exact − fd|; nan when skipped
    scaled_error: float  # |exact − fd| / max(1, |exact|) (docs/backward.md §8); nan when skipped
    surrogate: float  # the spike-count surrogate ∂L/∂w (nan for an exact loss)
    skipped: str  # "" or why the finite difference was not used


@dataclass(frozen=True)
class GradCheckResult:
    """All checked weights and what was checked."""

    checks: tuple[WeightCheck, ...]
    function: str  # "loss" or "linear probe"
    label: str  # human-readable description of the checked function
    loss_exact: bool  # True: the loss's own gradient is exact; False: surrogate
    eps: float
    tol: float

    @property
    def compared(self) -> tuple[WeightCheck, ...]:
        return tuple(c for c in self.checks if not c.skipped)

    @property
    def max_scaled_error(self) -> float:
        errs = [c.scaled_error for c in self.compared]
        return max(errs) if errs else float("nan")

    @property
    def passed(self) -> bool:
        """True when at least one weight was compared and every comparison is within ``tol``."""
        return bool(self.compared) and self.max_scaled_error <= self.tol


def float64_copy(network):
    """An independent float64 CPU copy of ``network`` with the same weights."""
    from .network import Network  # noqa: PLC0415 (engine module, loaded on use)

    net = Network.from_config({**network.config(), "dtype": "float64"}, backend="cpu")
    net.weights = [np.asarray(to_numpy(w), dtype=np.float64) for w in network.weights]
    return net


def _probe_weights(outs: list[SpikeTrains], seed: int) -> np.ndarray:
    """Random r_jk ~ N(0, 1) on the emitted output slots, 0 elsewhere (docs/backward.md §8)."""
    out = outs[-1]
    r = np.random.default_rng(seed).standard_normal(out.times.shape)
    return np.where(np.isfinite(out.times), r, 0.0)


def _value(loss, outs, target, probe) -> float:
    """The checked function: the summed loss over the batch, or the linear probe Σ r·t."""
    out = outs[-1].numpy()
    if probe is not None:
        t = np.asarray(out.times, dtype=np.float64)
        return float((probe * np.where(np.isfinite(t), t, 0.0)).sum())
    return float(np.sum(to_numpy(loss.loss(out, target))))


def _counts(outs) -> list[np.ndarray]:
    return [np.asarray(to_numpy(o.counts)).copy() for o in outs]


def choose_weights(grads: list[np.ndarray], n: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """Up to ``n`` (layer, post, pre) indices, spread over layers, preferring non-zero gradients."""
    rng = np.random.default_rng(seed)
    per_layer = max(1, math.ceil(n / len(grads)))
    chosen: list[tuple[int, int, int]] = []
    for li, g in enumerate(grads):
        flat = np.abs(np.asarray(g)).ravel()
        nz = np.flatnonzero(flat > 0)
        pool = nz if nz.size >= per_layer else np.arange(flat.size)
        pick = rng.choice(pool, size=min(per_layer, pool.size), replace=False)
        chosen += [(li, *map(int, np.unravel_index(p, g.shape))) for p in sorted(pick)]
    return chosen[:n]


def gradcheck(
    network,
    inp: SpikeTrains,
    t_max: float,
    loss,
    target,
    weights=None,
    n_weights: int = 8,
    eps: float = 1e-7,
    tol: float = 1e-5,
    seed: int = 0,
    probe: bool = False,
) -> GradCheckResult:
    """Exact gradient vs central finite differences for a few weights (never touches ``network``).

    ``weights``: a list of (layer, post, pre) (layer 0 = first trainable layer), or ``None`` to
    pick ``n_weights`` of them with :func:`choose_weights`. ``target`` is what ``loss`` expects
    (labels, or target times). The function checked is the loss summed over the batch when
    ``loss.exact`` and not ``probe``, else the linear probe (see the module docstring).
    """
    if not isinstance(inp, SpikeTrains):
        raise TypeError(f"inp must be SpikeTrains, got {type(inp).__name__}")
    if not (isinstance(eps, (int, float)) and 0 < eps < 1e-2):
        raise ValueError(f"eps must be in (0, 0.01), got {eps!r}")
    net = float64_copy(network)
    x = inp.numpy().astype("float64")
    outs = net.forward(x, t_max)
    base_counts = _counts(outs)
    out = outs[-1].numpy()
    exact_loss = bool(getattr(loss, "exact", False))
    surrogate = r = None
    if exact_loss and not probe:
        phi = to_numpy(loss.errors(out, target))
        function, label = "loss", f"{type(loss).__name__} (exact gradient), summed over the batch"
    else:
        if not exact_loss:
            surrogate = [np.asarray(to_numpy(g)) for g in net.backward(loss.errors(out, target))]
        phi = r = _probe_weights(outs, seed)
        function = "linear probe"
        label = f"linear probe L = Σ r·t over the output spikes (random r, seed {seed})"
        if not exact_loss:
            label += (
                f": {type(loss).__name__} is a surrogate whose finite difference is 0, so the "
                "backward pass is checked on this time-based probe instead"
            )
    grads = [np.asarray(to_numpy(g)) for g in net.backward(np.asarray(phi, dtype=np.float64))]
    if weights is None:
        weights = choose_weights(grads, n_weights, seed)
    w0 = [np.asarray(to_numpy(w), dtype=np.float64).copy() for w in net.weights]
    checks = []
    for li, j, i in weights:
        if (
            not (0 <= li < len(w0))
            or not (0 <= j < w0[li].shape[0])
            or not (0 <= i < w0[li].shape[1])
        ):
            raise ValueError(f"weights: index {(li, j, i)} is out of range")
        values, why = [], ""
        for sign in (1.0, -1.0):
            ws = [w.copy() for w in w0]
            ws[li][j, i] += sign * eps
            net.weights = ws
            o = net.forward(x, t_max)
            if any((a != b).any() for a, b in zip(_counts(o), base_counts, strict=True)):
                why = "spike count changed (kink: perturbation crosses a spike (dis)appearance)"
                break
            v = _value(loss, o, target, r)
            if not math.isfinite(v):
                why = "loss is infinite (a label neuron is silent)"
                break
            values.append(v)
        a = float(grads[li][j, i])
        fd = (values[0] - values[1]) / (2 * eps) if not why else float("nan")
        err = abs(a - fd) if not why else float("nan")
        checks.append(
            WeightCheck(
                layer=li,
                post=j,
                pre=i,
                weight=float(w0[li][j, i]),
                exact=a,
                fd=fd,
                abs_error=err,
                scaled_error=err / max(1.0, abs(a)) if not why else float("nan"),
                surrogate=float(surrogate[li][j, i]) if surrogate is not None else float("nan"),
                skipped=why,
            )
        )
    net.weights = w0
    return GradCheckResult(tuple(checks), function, label, exact_loss, float(eps), float(tol))
