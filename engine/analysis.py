"""Pure-NumPy summaries for snapshots: binned rasters, sparsity, latency and the error flow.

Definitions follow docs/training.md §5 (batscope's own, the paper defines none precisely) and
docs/backward.md §7 (the α·β error flow). Every function takes NumPy arrays (call ``to_numpy``
first) and never mutates them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class LayerSparsity:
    """Sparsity of one layer over an evaluation batch (docs/training.md §5 definitions)."""

    name: str
    spikes_per_sample: float
    active_fraction: float  # mean fraction of neurons with n >= 1 per sample
    dead_fraction: float  # fraction of neurons silent on every sample of the batch
    saturated_fraction: float  # fraction of (sample, neuron) pairs with n == n_max; NaN: no buffer
    spikes_per_neuron: np.ndarray  # [N] mean spikes per sample of each neuron


@dataclass(frozen=True)
class LatencyCurve:
    """Accuracy against decision time (docs/training.md §5), with the encoding window end."""

    t: np.ndarray
    accuracy: np.ndarray
    t_enc: float
    label: str = ""


LATENCY_MODES = ("count", "ttfs")
TIE_MODES = ("reference", "strict")


def _int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return float(value)


def _trains(times, counts, batched: bool) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``times [.., N, K]`` float and ``counts [.., N]`` int (NumPy)."""
    times, counts = np.asarray(times), np.asarray(counts)
    ndim = 3 if batched else 2
    if times.ndim != ndim or times.dtype.kind != "f":
        raise ValueError(f"times must be a float array with {ndim} dimensions, got {times.shape}")
    if counts.shape != times.shape[:-1] or counts.dtype.kind not in "iu":
        raise ValueError(f"counts must be an integer array of shape {times.shape[:-1]}")
    if counts.size and (counts.min() < 0 or counts.max() > times.shape[-1]):
        raise ValueError(f"counts must lie in [0, {times.shape[-1]}]")
    return times, counts


def emitted(times, counts) -> np.ndarray:
    """Boolean mask of the slots holding an emitted, finite spike (slot k < n, docs/model.md §1)."""
    times = np.asarray(times)
    slot = np.arange(times.shape[-1])
    return (slot < np.asarray(counts)[..., None]) & np.isfinite(times)


def spike_events(times, counts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Emitted spikes of one layer as flat ``(neuron, slot, time)`` arrays, neuron-major order."""
    times, counts = _trains(times, counts, batched=False)
    neuron, slot = np.nonzero(emitted(times, counts))
    return neuron, slot, times[neuron, slot]


def bin_raster(times, counts, t_max: float, n_bins: int, weights=None):
    """Spikes (or per-spike ``weights``, e.g. δ) summed per (neuron, time bin) over [0, t_max].

    Returns ``(t_centres [n_bins], binned [N, n_bins])``; the payload is O(N × n_bins) whatever the
    number of spikes (app-architecture.md §7). Spikes outside [0, t_max] are left out; a spike at
    exactly t_max falls into the last bin. ``binned`` is int64 for counts, float64 for weights
    (non-finite weights are skipped).
    """
    times, counts = _trains(times, counts, batched=False)
    t_max = _positive("t_max", t_max)
    n_bins = _int("n_bins", n_bins, 1)
    edges = np.linspace(0.0, t_max, n_bins + 1)
    mask = emitted(times, counts) & (times >= 0.0) & (times <= t_max)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != times.shape:
            raise ValueError(f"weights must have shape {times.shape}, got {weights.shape}")
        mask &= np.isfinite(weights)
    neuron, slot = np.nonzero(mask)
    b = np.minimum((times[neuron, slot] / t_max * n_bins).astype(np.int64), n_bins - 1)
    flat = neuron * n_bins + b
    size = times.shape[0] * n_bins
    if weights is None:
        binned = np.bincount(flat, minlength=size).astype(np.int64)
    else:
        binned = np.bincount(flat, weights=weights[neuron, slot], minlength=size)
    return 0.5 * (edges[:-1] + edges[1:]), binned.reshape(times.shape[0], n_bins)


def layer_sparsity(name: str, counts, n_max: int | None) -> LayerSparsity:
    """Sparsity of one layer over a batch ``counts [B, N]`` (docs/training.md §5, batscope's
    definitions).

    spikes per sample = mean_b Σ_j n_bj; active fraction = mean_b of the fraction of neurons with
    n ≥ 1; dead fraction = fraction of neurons silent on every sample; saturated fraction = fraction
    of (sample, neuron) pairs with n = n_max (the buffer S is full, later spikes are lost).
    ``n_max`` None: the layer has no spike buffer (the input layer, whose spikes are the
    encoding, not a neuron's): its saturated fraction is NaN, never reported as saturated.
    """
    counts = np.asarray(counts)
    if counts.ndim != 2 or counts.dtype.kind not in "iu":
        raise ValueError(f"counts must be an integer array [B, N], got {counts.shape}")
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise ValueError(f"counts must hold at least one sample and one neuron, got {counts.shape}")
    saturated = math.nan if n_max is None else float((counts >= _int("n_max", n_max, 1)).mean())
    return LayerSparsity(
        name=str(name),
        spikes_per_sample=float(counts.sum(axis=1).mean()),
        active_fraction=float((counts > 0).mean()),
        dead_fraction=float((counts.max(axis=0) == 0).mean()),
        saturated_fraction=saturated,
        spikes_per_neuron=counts.mean(axis=0).astype(np.float64),
    )


def _decide(score: np.ndarray, tie_mode: str) -> np.ndarray:
    """Argmax of ``score [B, N]`` (−inf = no candidate): reference = lowest index on ties;
    strict = −1 on a tie; both −1 when no neuron qualifies (docs/losses.md §6,
    docs/training.md §5)."""
    best = score.max(axis=1)
    pred = np.argmax(score, axis=1)
    undecided = np.isneginf(best)
    if tie_mode == "strict":
        undecided |= (score == best[:, None]).sum(axis=1) > 1
    return np.where(undecided, -1, pred)


def latency_curve(
    out_times,
    out_counts,
    labels,
    t_grid,
    mode: str = "count",
    t_enc: float = 0.1,
    tie_mode: str = "strict",
    label: str = "",
) -> LatencyCurve:
    """Accuracy (fraction in [0, 1]) against the decision time T_d (docs/training.md §5, paper
    Fig. 6).

    At each T_d only output spikes with t ≤ T_d count. ``mode="count"``: argmax of the spike counts
    up to T_d; ``mode="ttfs"``: argmin of the first spike time if it is ≤ T_d. No spike yet means no
    decision, scored as wrong, in both modes. Ties: ``"reference"`` takes the lowest index,
    ``"strict"`` makes no decision (wrong). ``t_grid`` should end at T_sim so that the last value is
    the final accuracy (see ``confidence``).
    """
    times, counts = _trains(out_times, out_counts, batched=True)
    labels = np.asarray(labels)
    if labels.shape != counts.shape[:1] or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be an integer array of shape {counts.shape[:1]}")
    t_grid = np.asarray(t_grid, dtype=np.float64)
    if t_grid.ndim != 1 or t_grid.size == 0 or not np.isfinite(t_grid).all():
        raise ValueError("t_grid must be a non-empty 1-D array of finite times")
    if mode not in LATENCY_MODES:
        raise ValueError(f"mode must be one of {LATENCY_MODES}, got {mode!r}")
    if tie_mode not in TIE_MODES:
        raise ValueError(f"tie_mode must be one of {TIE_MODES}, got {tie_mode!r}")
    t_enc = _positive("t_enc", t_enc)
    if times.shape[0] == 0:
        raise ValueError("out_times must hold at least one sample")
    valid = np.where(emitted(times, counts), times, np.inf)
    first = valid.min(axis=2)  # [B, N] first spike (+inf when silent)
    accuracy = np.empty(t_grid.size)
    for i, t_d in enumerate(t_grid):
        if mode == "count":
            n = (valid <= t_d).sum(axis=2).astype(np.float64)
            score = np.where(n > 0, n, -np.inf)
        else:
            score = np.where(first <= t_d, -first, -np.inf)
        accuracy[i] = float((_decide(score, tie_mode) == labels).mean())
    return LatencyCurve(t=t_grid, accuracy=accuracy, t_enc=t_enc, label=str(label))


def confidence(curve: LatencyCurve) -> np.ndarray:
    """acc(T_d) / acc(T_sim), T_sim = the last grid point (docs/training.md §5); NaN if acc(T_sim) =
    0."""
    acc = np.asarray(curve.accuracy, dtype=np.float64)
    final = acc[-1] if acc.size else 0.0
    return acc / final if final > 0 else np.full_like(acc, np.nan)


def first_time_at(t, values, level: float) -> float:
    """The first t where ``values`` ≥ level (e.g. 100 % confidence), NaN if never reached."""
    hit = np.nonzero(np.asarray(values) >= level)[0]
    return float(np.asarray(t)[hit[0]]) if hit.size else float("nan")


class ErrorSums(NamedTuple):
    """Per-neuron sums over the emitted spikes of one layer (docs/backward.md §7)."""

    phi: np.ndarray  # Σ_k φ_k (signed)
    mu: np.ndarray  # Σ_k μ_k = Σ_k α_k β_k (signed)
    abs_phi: np.ndarray  # Σ_k |φ_k|
    abs_mu: np.ndarray  # Σ_k |μ_k|


def error_sums(phi, mu, counts) -> ErrorSums:
    """Σφ, Σμ, Σ|φ|, Σ|μ| per neuron over emitted slots ``k < n``; NaN entries are skipped."""
    phi, mu = np.asarray(phi, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    if phi.ndim != 2 or mu.shape != phi.shape:
        raise ValueError(
            f"phi and mu must be [N, K] arrays of one shape, got {phi.shape}, {mu.shape}"
        )
    counts = np.asarray(counts)
    if counts.shape != phi.shape[:1]:
        raise ValueError(f"counts must have shape {phi.shape[:1]}, got {counts.shape}")
    slot = np.arange(phi.shape[1]) < counts[:, None]
    phi = np.where(slot & np.isfinite(phi), phi, 0.0)
    mu = np.where(slot & np.isfinite(mu), mu, 0.0)
    return ErrorSums(phi.sum(1), mu.sum(1), np.abs(phi).sum(1), np.abs(mu).sum(1))


def error_share(phi, mu, counts=None) -> float:
    """Σ|μ| / (Σ|φ| + Σ|μ|): how much of the error flows through the reset path
    (docs/backward.md §7).

    0 for single-spike neurons (μ = 0); NaN when there is no error at all. ``counts`` limits the
    sums to emitted slots (all slots when None).
    """
    phi = np.asarray(phi, dtype=np.float64)
    if counts is None:
        counts = np.full(phi.shape[:1], phi.shape[1] if phi.ndim == 2 else 0)
    sums = error_sums(phi, mu, counts)
    total = sums.abs_phi.sum() + sums.abs_mu.sum()
    return float(sums.abs_mu.sum() / total) if total > 0 else float("nan")


def decimate_minmax(t, u, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Shorten traces ``u [n, T]`` to about ``n_out`` points keeping each bucket's min and max.

    Unlike plain striding, the threshold crossings and the Δθ reset drops stay visible. Returns the
    inputs unchanged when ``T <= n_out``.
    """
    t, u = np.asarray(t), np.asarray(u)
    n_out = _int("n_out", n_out, 4)
    if u.ndim != 2 or u.shape[1] != t.size:
        raise ValueError(f"u must have shape [n, {t.size}], got {u.shape}")
    if t.size <= n_out:
        return t, u
    edges = np.linspace(0, t.size, n_out // 2 + 1).astype(np.int64)
    keep = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        seg = u[:, a:b]
        idx = np.unique(np.concatenate([a + seg.argmin(1), a + seg.argmax(1)]))
        keep.append(idx)
    keep = np.unique(np.concatenate(keep))
    return t[keep], u[:, keep]


CHANNEL_QUANTITIES = ("spike count", "first spike")


def channel_image(times, counts, shape, channel: int, quantity: str) -> np.ndarray:
    """One channel of an (H, W, C) layer as an ``[H, W]`` image of one sample's spikes.

    ``times [N, K]``, ``counts [N]`` with N = H·W·C neurons flattened channels-last, row-major
    (neuron (row·W + col)·C + c, engine/layers.py). ``quantity`` "spike count": the number of
    spikes of each neuron; "first spike": its first spike time, NaN where it is silent.
    """
    times, counts = _trains(times, counts, batched=False)
    if len(shape) != 3:
        raise ValueError(f"shape must be (H, W, C), got {tuple(shape)}")
    h, w, c = (int(s) for s in shape)
    if counts.size != h * w * c:
        raise ValueError(
            f"the layer has {counts.size} neurons, shape {tuple(shape)} holds {h * w * c}"
        )
    channel = _int("channel", channel, 0)
    if channel >= c:
        raise ValueError(f"channel must be in [0, {c}), got {channel}")
    if quantity == "spike count":
        return counts.reshape(h, w, c)[:, :, channel].astype(np.float64)
    if quantity == "first spike":
        mask = emitted(times, counts)
        first = np.where(mask, times, np.inf).min(axis=1, initial=np.inf)
        first[~mask.any(axis=1)] = np.nan
        return first.reshape(h, w, c)[:, :, channel].astype(np.float64)
    raise ValueError(f"quantity must be one of {CHANNEL_QUANTITIES}, got {quantity!r}")


def kernel_tiles(w, in_channel: int) -> np.ndarray:
    """The C_out kernels ``w[:, :, :, in_channel]`` of a conv weight ``[C_out, k, k, C_in]`` side
    by side in one ``[k, C_out·(k + 1) − 1]`` image, a NaN column between neighbours; kernel o
    fills columns ``o·(k + 1) .. o·(k + 1) + k − 1`` and row r of the image is kernel row r."""
    w = np.asarray(w)
    if w.ndim != 4 or w.shape[1] != w.shape[2]:
        raise ValueError(f"w must have shape (C_out, k, k, C_in), got {w.shape}")
    c_out, k, _, c_in = w.shape
    in_channel = _int("in_channel", in_channel, 0)
    if in_channel >= c_in:
        raise ValueError(f"in_channel must be in [0, {c_in}), got {in_channel}")
    tiles = np.full((k, c_out * (k + 1) - 1), np.nan)
    for o in range(c_out):
        tiles[:, o * (k + 1) : o * (k + 1) + k] = w[o, :, :, in_channel]
    return tiles
