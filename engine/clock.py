"""Clock-based (time-stepped) simulation of the same LIF layers, for precision comparisons.

The exact engine finds each threshold crossing in closed form (docs/forward.md §1–§5). A clock-based
simulator, the usual alternative and the paper's motivation, advances the state on a grid of step
``dt`` and can only see a crossing at a grid point. It integrates the model of docs/model.md §2

    du/dt = −u/τ + g − Δθ·Σ_k δ(t − t_k),      dg/dt = −g/τs + Σ_i w_ji Σ_z δ(t − t_iz)

with ``method="euler"`` (forward Euler, the textbook clock simulator: error O(dt) from both the
integration and the grid) or ``method="exact"`` (the exact propagator over each step, as Brian2's
``method='exact'``: only the grid quantisation error O(dt) remains). In both, an input with
t_in ∈ (t_{n−1}, t_n] is added to g at t_n (it has not acted at t_in, docs/model.md §1), a spike is
emitted at the first grid point with u ≥ θ, then u ← u − Δθ, and at most ``n_max`` spikes are kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from .backend import to_numpy
from .spikes import SpikeTrains

METHODS = ("euler", "exact")


@nb.njit(nogil=True, cache=False)
def _clock_layer(
    step_of, pre_index, order_start, W, n_steps, dt, tau_s, theta, reset, n_max, exact
):  # pragma: no cover - compiled
    """Time-step every (sample, post neuron) pair; events are pre-sorted by step per sample."""
    n_batch = order_start.shape[0] - 1
    n_post = W.shape[0]
    tau = 2.0 * tau_s
    times = np.full((n_batch, n_post, n_max), np.inf)
    counts = np.zeros((n_batch, n_post), dtype=np.int32)
    q = math.exp(-dt / tau)  # exact propagator over one step (docs/forward.md §4), e^{−dt/τs} = q²
    for b in range(n_batch):
        lo, hi = order_start[b], order_start[b + 1]
        for j in range(n_post):
            u = 0.0
            g = 0.0
            ptr = lo
            while ptr < hi and step_of[ptr] == 0:  # inputs at t = 0 act from the first step
                g += W[j, pre_index[ptr]]
                ptr += 1
            n_out = 0
            for n in range(1, n_steps + 1):
                if exact:
                    u = u * q + tau * g * (q - q * q)
                    g = g * q * q
                else:  # forward Euler: both right-hand sides at the start of the step
                    du = -u / tau + g
                    g = g - dt * g / tau_s
                    u = u + dt * du
                while ptr < hi and step_of[ptr] <= n:
                    g += W[j, pre_index[ptr]]
                    ptr += 1
                if u >= theta:  # threshold crossing seen at the grid point t_n
                    times[b, j, n_out] = n * dt
                    n_out += 1
                    u -= reset
                    if n_out == n_max:
                        break
            counts[b, j] = n_out
    return times, counts


def simulate_layer(
    inp: SpikeTrains,
    W,
    tau_s: float,
    theta: float,
    reset: float,
    n_max: int,
    t_max: float,
    dt: float,
    method: str = "euler",
) -> SpikeTrains:
    """Clock-based output spikes of one dense LIF layer (float64, NumPy).

    ``W`` is ``[n_post, n_pre]``; spike times are multiples of ``dt`` in ``(0, t_max]``.
    """
    if not isinstance(inp, SpikeTrains):
        raise TypeError(f"inp must be SpikeTrains, got {type(inp).__name__}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    for name, v in (
        ("dt", dt),
        ("t_max", t_max),
        ("tau_s", tau_s),
        ("theta", theta),
        ("reset", reset),
    ):
        if not (isinstance(v, (int, float, np.floating)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {v!r}")
    if int(n_max) < 1:
        raise ValueError(f"n_max must be >= 1, got {n_max!r}")
    W = np.ascontiguousarray(to_numpy(W), dtype=np.float64)
    if W.ndim != 2 or W.shape[1] != inp.n_neurons:
        raise ValueError(f"W must have shape [n_post, {inp.n_neurons}], got {W.shape}")
    n_steps = int(math.floor(t_max / dt + 1e-9))
    if n_steps > 50_000_000:
        raise ValueError(f"dt={dt} gives {n_steps} steps over t_max={t_max}; use a larger dt")
    pre = inp.numpy()
    times = np.asarray(pre.times, dtype=np.float64)
    b_idx, i_idx, k_idx = np.nonzero(np.isfinite(times))
    t_in = times[b_idx, i_idx, k_idx]
    step = np.ceil(t_in / dt - 1e-9).astype(np.int64)  # first grid point at or after t_in
    order = np.lexsort((i_idx, step, b_idx))  # by sample, then step (stable, deterministic)
    starts = np.searchsorted(b_idx[order], np.arange(inp.batch_size + 1)).astype(np.int64)
    out_t, out_n = _clock_layer(
        step[order],
        i_idx[order].astype(np.int64),
        starts,
        W,
        n_steps,
        float(dt),
        float(tau_s),
        float(theta),
        float(reset),
        int(n_max),
        method == "exact",
    )
    return SpikeTrains(out_t, out_n)


def simulate_network(
    network, inp: SpikeTrains, t_max: float, dt: float, method: str = "euler"
) -> list[SpikeTrains]:
    """Clock-based outputs of every layer of a :class:`~batscope.engine.network.Network`.

    Each layer is fed the clock-based spikes of the layer below, so errors compound with depth
    as they would in a clock-driven simulator.
    """
    outs, x = [], inp.numpy()
    for layer, W in zip(network.layers, network.weights, strict=True):
        x = simulate_layer(
            x, W, layer.tau_s, layer.theta, layer.reset, layer.n_max, t_max, dt, method
        )
        outs.append(x)
    return outs


@dataclass(frozen=True)
class Comparison:
    """How far clock-based spikes are from the exact ones (one layer).

    Times are compared slot by slot where both fired (k < min(n_exact, n_clock)); count
    mismatches are the (sample, neuron) pairs whose spike counts differ.
    """

    max_abs_error: float  # [s]; nan when no spike pair matched
    mean_abs_error: float  # [s]
    matched: int  # number of compared spike pairs
    count_mismatch: int  # (sample, neuron) pairs with different counts
    pairs: int  # (sample, neuron) pairs in total
    exact_spikes: int
    clock_spikes: int


def compare(exact: SpikeTrains, clock: SpikeTrains) -> Comparison:
    """Slot-wise spike-time error and count mismatches between two trains of the same shape."""
    e, c = exact.numpy(), clock.numpy()
    if e.times.shape[:2] != c.times.shape[:2]:
        raise ValueError(f"shapes differ: {e.times.shape[:2]} vs {c.times.shape[:2]}")
    k = min(e.n_slots, c.n_slots)
    te = np.asarray(e.times[..., :k], dtype=np.float64)
    tc = np.asarray(c.times[..., :k], dtype=np.float64)
    both = np.isfinite(te) & np.isfinite(tc)
    err = np.abs(te[both] - tc[both])
    return Comparison(
        max_abs_error=float(err.max()) if err.size else float("nan"),
        mean_abs_error=float(err.mean()) if err.size else float("nan"),
        matched=int(err.size),
        count_mismatch=int((np.asarray(e.counts) != np.asarray(c.counts)).sum()),
        pairs=int(np.asarray(e.counts).size),
        exact_spikes=int(np.asarray(e.counts).sum()),
        clock_spikes=int(np.asarray(c.counts).sum()),
    )


def error_vs_dt(
    network,
    inp: SpikeTrains,
    t_max: float,
    dts,
    method: str = "euler",
    layer: int = -1,
    exact: list[SpikeTrains] | None = None,
) -> list[Comparison]:
    """:func:`compare` of one layer's clock-based output with the exact one, for each ``dt``.

    ``exact`` is the exact forward of ``network`` on ``inp`` (computed when omitted).
    """
    if exact is None:
        exact = [o.numpy() for o in network.forward(inp, t_max)]
    return [
        compare(exact[layer], simulate_network(network, inp, t_max, float(dt), method)[layer])
        for dt in dts
    ]
