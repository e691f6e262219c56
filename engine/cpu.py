"""CPU backend: the argument-checked entry points of the Numba kernels, one pair per layer type.

Every kernel runs in the dtype of its arrays (float32 or float64): the entry points cast the
scalar constants to that dtype so Numba specialises the whole kernel. Where each part lives:
input merging engine/cpu_merge.py, the LIF neuron core (spike-time solver with the stop
conditions, α·β recursion, suffix sums of the backward) engine/cpu_neuron.py, connectivity
engine/cpu_dense.py, engine/cpu_conv.py, engine/cpu_pool.py.

Numba's on-disk cache (``cache=True``) keys a kernel on its own file only, while the kernels
inline the neuron core and the merge of other files: engine/kernel_cache.py keys every cached
kernel of these files on all of them, so an edit of any one recompiles them all.

Shapes (docs/model.md §1): pre/post times ``[B, N, S]`` (+inf padded), counts ``[B, N]`` int32,
weights ``W[G, ...]`` with ``group[b]`` in ``[0, G)`` selecting the weights of sample ``b``.
"""

from __future__ import annotations

import math

import numpy as np

from . import cpu_conv, cpu_dense, cpu_merge, cpu_neuron, cpu_pool
from .cpu_conv import (
    FieldEvents,
    conv_backward_kernel,
    conv_forward_kernel,
    lists_disagreeing,
)
from .cpu_conv import merge_receptive_fields as conv_fields
from .cpu_dense import (
    FORWARD_BLOCK,
    bucket_spikes,
    dense_backward_kernel,
    dense_forward_kernel,
    transpose,
)
from .cpu_merge import Events, checked_events, merge_inputs, time_bits
from .cpu_neuron import NeuronConstants, below, forward_constants, total_errors
from .cpu_pool import pool_backward_kernel, pool_forward_kernel
from .cpu_schedule import balanced_tasks, worker_count
from .entry_checks import checked_post, checked_pre
from .kernel_cache import stamp_with_sources
from .spikes import check_counts
from .threads import select_threading_layer

select_threading_layer()  # OpenMP or TBB before any parallel kernel runs, never workqueue
stamp_with_sources([cpu_merge, cpu_neuron, cpu_dense, cpu_conv, cpu_pool])

__all__ = [
    "Events",
    "FieldEvents",
    "NeuronConstants",
    "below",
    "conv_backward",
    "conv_forward",
    "dense_backward",
    "dense_forward",
    "forward_constants",
    "merge_inputs",
    "merge_receptive_fields",
    "pool_backward",
    "pool_forward",
]


def _positive(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _float_weights(W) -> np.ndarray:
    W = np.ascontiguousarray(W)
    if W.dtype not in (np.float32, np.float64):
        raise TypeError(f"W must be float32 or float64, got {W.dtype}")
    return W


def checked_neuron(tau_s, theta, reset, n_max, t_max):
    """The neuron parameters validated: ``(tau, theta, reset, n_max, t_max)``."""
    tau = 2.0 * _positive("tau_s", tau_s)  # tau = 2 tau_s (docs/model.md §2)
    theta, reset, t_max = (
        _positive(k, v) for k, v in (("theta", theta), ("reset", reset), ("t_max", t_max))
    )
    if int(n_max) != n_max or n_max < 1:
        raise ValueError(f"n_max must be an integer >= 1, got {n_max}")
    return tau, theta, reset, int(n_max), t_max


def _post_errors(post_times, post_counts, udot, phi, n_b: int, n_o: int, dt, tau_s, reset):
    """The checked post arrays of a backward call, ``tau = 2 tau_s`` and the total errors delta
    (docs/backward.md §3): ``(post_times, post_counts, udot, tau, delta)``."""
    post_times, post_counts, udot, phi = checked_post(
        np, post_times, post_counts, udot, phi, n_b, n_o, dt
    )
    tau = 2.0 * _positive("tau_s", tau_s)
    reset = _positive("reset", reset)
    return (
        post_times,
        post_counts,
        udot,
        tau,
        total_errors(post_times, post_counts, udot, phi, tau, reset),
    )


def output_buffers(n_b: int, n_o: int, n_max: int, dt):
    """Uninitialised ``(times, counts, udot)`` for ``n_o`` neurons with ``n_max`` slots: the
    forward kernels write every element (engine/cpu_neuron.simulate_block), in parallel."""
    return (
        np.empty((n_b, n_o, n_max), dtype=dt),
        np.empty((n_b, n_o), dtype=np.int32),
        np.empty((n_b, n_o, n_max), dtype=dt),
    )


# --------------------------------------------------------------------------------------------
# Dense
# --------------------------------------------------------------------------------------------
ONE_GRADIENT_BLOCK = 512  # post neurons a dense layer's weight gradient takes in one block


def _dense_prep(pre_times, pre_counts, W, group):
    W = _float_weights(W)
    if W.ndim != 3:
        raise ValueError(f"W must have shape [G, n_post, n_pre], got {W.shape}")
    pre_times, pre_counts, group = checked_pre(
        np, pre_times, pre_counts, group, W.shape[2], W.shape[0], W.dtype, group_values=True
    )
    return pre_times, pre_counts, W, group, W.dtype


def dense_forward(pre_times, pre_counts, W, group, tau_s, theta, reset, n_max, t_max, events=None):
    """Exact spike times of a dense layer (docs/forward.md §5).

    Returns ``(times [B, No, n_max] +inf padded, counts [B, No] int32, udot [B, No, n_max])``
    where ``udot`` is the membrane slope at each spike (0 in empty slots). ``events``
    (CPU only, optional): ``merge_inputs(pre_times, pre_counts, 2 tau_s)``, to share the merge
    with ``dense_backward``.
    """
    pre_times, pre_counts, W, group, dt = _dense_prep(pre_times, pre_counts, W, group)
    tau, theta, reset, n_max, t_max = checked_neuron(tau_s, theta, reset, n_max, t_max)
    out_t, out_c, out_ud = output_buffers(pre_times.shape[0], W.shape[1], n_max, dt)
    ev = checked_events(events, pre_times, pre_counts, tau)
    consts = forward_constants(dt, tau_s, theta, reset, t_max)
    wt = transpose(W)  # [G, Ni, No]: neurons contiguous
    dense_forward_kernel(
        ev.t, ev.i, ev.q, ev.n, wt, group, consts, FORWARD_BLOCK, out_t, out_c, out_ud
    )
    return out_t, out_c, out_ud


def dense_backward(
    pre_times,
    pre_counts,
    W,
    group,
    post_times,
    post_counts,
    udot,
    phi,
    tau_s,
    reset,
    need_pre,
    events=None,
):
    """BATS backward of a dense layer (docs/backward.md §6).

    ``phi`` [B, No, S] is the inter-neuron error dL/dt of each post spike (never mutated; empty
    slots ignored). Returns ``(delta [B, No, S], grad [G, No, Ni] summed over the samples of each
    group, phi_pre [B, Ni, Ki] or None)``. ``events``: as in :func:`dense_forward`.
    """
    pre_times, pre_counts, W, group, dt = _dense_prep(pre_times, pre_counts, W, group)
    n_b, n_o = pre_times.shape[0], W.shape[1]
    post_times, post_counts, udot, tau, delta = _post_errors(
        post_times, post_counts, udot, phi, n_b, n_o, dt, tau_s, reset
    )
    inv_tau = dt.type(1.0 / tau)

    ev = checked_events(events, pre_times, pre_counts, tau)
    head, item, top = bucket_spikes(ev, post_times, post_counts)
    n_g = W.shape[0]
    order = np.argsort(group, kind="stable").astype(np.int64)
    gstart = np.searchsorted(group[order], np.arange(n_g + 1)).astype(np.int64)
    # chunks of samples add parallelism when a layer has few neurons; a function of the shapes
    # only, so results do not depend on the number of threads
    n_chunk = 1 if (n_o >= 128 or n_g >= 8) else int(min(8, np.diff(gstart).max(initial=1)))
    parts = np.zeros((n_chunk, n_g, W.shape[2], n_o), dtype=dt)
    # blocks of post neurons, a multiple of 8 so the SIMD loops have no scalar tail (each
    # neuron's arithmetic is the same whatever the block): one block up to ONE_GRADIENT_BLOCK
    # neurons, as threads adding to the same weight rows share their cache lines (Net3's
    # 640 -> 300 layer: 3.0 ms a batch on one thread, 4.3 to 7.2 ms as blocks on two); else two
    # per thread (every block rescans the sample's spike buckets: fewer, larger blocks cost less)
    per_block = n_o if n_o <= ONE_GRADIENT_BLOCK else -(-n_o // (2 * worker_count()))
    block = 8 * -(-max(16, per_block) // 8)
    # tasks: the gradient's (group, chunk, block), then one per sample for phi_pre; cost: the
    # inputs swept times the neurons updated
    n_blk = -(-n_o // block)
    swept = np.concatenate(([0], np.cumsum(top[order])))  # inputs swept, samples in task order
    size, chunk = np.diff(gstart)[:, None], np.arange(n_chunk + 1)
    bounds = gstart[:-1, None] + size * chunk // n_chunk  # [G, n_chunk + 1], as the kernel
    sweeps = np.diff(swept[bounds], axis=1).ravel()
    costs = np.outer(sweeps, np.minimum(block, n_o - block * np.arange(n_blk))).ravel()
    if need_pre:
        phi_pre, wt = np.empty_like(pre_times), transpose(W)  # phi_pre: every element written
        costs = np.concatenate([costs, top * float(n_o)])
    else:
        phi_pre, wt = np.empty((n_b, 1, 1), dtype=dt), np.empty((n_g, 1, n_o), dtype=dt)
    dense_backward_kernel(
        ev.t, ev.i, ev.s, ev.q, head, item, top, post_times, delta, udot, order, gstart, inv_tau,
        n_chunk, block, wt, group, *balanced_tasks(costs, worker_count()), parts, phi_pre,
    )  # fmt: skip
    grad_t = parts[0]
    for ch in range(1, n_chunk):
        grad_t += parts[ch]
    return delta, transpose(grad_t), (phi_pre if need_pre else None)


# --------------------------------------------------------------------------------------------
# Conv2D (docs/conv-pool.md §2)
# --------------------------------------------------------------------------------------------
def _conv_prep(pre_times, pre_counts, W, group, in_shape):
    W = _float_weights(W)
    if W.ndim != 5 or W.shape[2] != W.shape[3]:
        raise ValueError(f"W must have shape [G, C_out, k, k, C_in], got {W.shape}")
    h_in, w_in, c_in = checked_shape(in_shape)
    k = W.shape[2]
    if W.shape[4] != c_in:
        raise ValueError(f"W has {W.shape[4]} input channels, in_shape has {c_in}")
    if k > h_in or k > w_in:
        raise ValueError(f"kernel size {k} exceeds the input {h_in}x{w_in}")
    pre_times, pre_counts, group = checked_pre(
        np, pre_times, pre_counts, group, h_in * w_in * c_in, W.shape[0], W.dtype, group_values=True
    )
    return pre_times, pre_counts, W, group, (h_in, w_in, c_in), k


def checked_shape(in_shape) -> tuple[int, int, int]:
    """``(H, W, C)`` as positive ints; ValueError otherwise."""
    if len(in_shape) != 3 or any(int(s) != s or s < 1 for s in in_shape):
        raise ValueError(f"in_shape must be (H, W, C) of positive integers, got {in_shape}")
    return tuple(int(s) for s in in_shape)


def merge_receptive_fields(pre_times, pre_counts, in_shape, kernel_size: int, tau) -> FieldEvents:
    """Sorted input list of every (sample, output position) of a conv layer; reusable by
    ``conv_forward`` and ``conv_backward`` of the same layer and inputs (``events``)."""
    check_counts(pre_times, pre_counts, "pre_")
    pre_times = np.ascontiguousarray(pre_times)
    pre_counts = np.ascontiguousarray(pre_counts, dtype=np.int32)
    return conv_fields(
        pre_times, pre_counts, checked_shape(in_shape), int(kernel_size), tau,
        time_bits(pre_times), worker_count(),
    )  # fmt: skip


def _field_events(events, pre_times, pre_counts, in_shape, k, tau) -> FieldEvents:
    if events is None:
        return conv_fields(
            pre_times, pre_counts, in_shape, k, tau, time_bits(pre_times), worker_count()
        )
    if not isinstance(events, FieldEvents):
        raise TypeError(
            f"events must be a FieldEvents from merge_receptive_fields, got {type(events).__name__}"
        )
    if (events.tau, events.in_shape, events.k) != (tau, in_shape, k) or (
        events.t.shape[0] != pre_times.shape[0] or events.t.dtype != pre_times.dtype
    ):
        raise ValueError("events were merged for another layer, batch or dtype")
    if not _field_events_fit(events, pre_times, pre_counts):
        raise ValueError("events were merged from other inputs (counts or indices disagree)")
    return events


def _field_events_fit(ev: FieldEvents, pre_times, pre_counts) -> bool:
    """The kernels index the inputs, the weight rows and their own arrays by ``ev``: same
    layout, each field's count, and row and slot indices in range in every list's [:n]."""
    h_in, w_in, c_in = ev.in_shape
    k = ev.k
    n_b, n_i, k_i = pre_times.shape
    n_p = (h_in - k + 1) * (w_in - k + 1)
    if not (ev.t.ndim == 3 and ev.t.shape == ev.q.shape == ev.row.shape == ev.src.shape):
        return False
    if ev.n.shape != (n_b, n_p) or ev.t.shape[:2] != (n_b, n_p):
        return False
    bad = lists_disagreeing(
        pre_counts, h_in, w_in, c_in, k, ev.n, ev.row, ev.src, k * k * c_in, n_i * k_i
    )
    return bad == 0


def conv_rows(W) -> np.ndarray:
    """``W[G, C_out, k, k, C_in]`` as weight rows ``[G, k k C_in, C_out]`` (contiguous)."""
    return np.ascontiguousarray(np.swapaxes(W.reshape(W.shape[0], W.shape[1], -1), 1, 2))


SIMD_STEP = 16  # neurons the forward's SIMD loop (cpu_neuron.advance_block) takes a step


def padded_rows(rows) -> np.ndarray:
    """Weight rows ``[G, R, C]`` with zero columns up to a multiple of ``SIMD_STEP``: LLVM runs
    ``advance_block`` 16 neurons a step on the development VM and the rest 4 lanes or one at a
    time, so Net3's 15 and 40 channels forward faster as 16 and 48 (the padded neurons stay
    silent, engine/cpu_neuron.simulate_block)."""
    c = rows.shape[2]
    c_pad = -(-c // SIMD_STEP) * SIMD_STEP
    if c_pad == c:
        return rows
    out = np.zeros(rows.shape[:2] + (c_pad,), dtype=rows.dtype)
    out[:, :, :c] = rows
    return out


def conv_forward(
    pre_times, pre_counts, W, group, in_shape, tau_s, theta, reset, n_max, t_max, events=None
):
    """Exact spike times of a conv layer (valid cross-correlation, stride 1; docs/conv-pool.md §2).

    ``pre_times [B, H W C_in, K]`` in the channels-last order of ``in_shape = (H, W, C_in)``,
    ``W [G, C_out, k, k, C_in]``. Returns ``(times, counts, udot)`` for the
    ``(H - k + 1) (W - k + 1) C_out`` neurons, as :func:`dense_forward`. ``events``: optional
    ``merge_receptive_fields(pre_times, pre_counts, in_shape, k, 2 tau_s)``.
    """
    pre_times, pre_counts, W, group, in_shape, k = _conv_prep(
        pre_times, pre_counts, W, group, in_shape
    )
    dt = W.dtype
    tau, theta, reset, n_max, t_max = checked_neuron(tau_s, theta, reset, n_max, t_max)
    n_o = (in_shape[0] - k + 1) * (in_shape[1] - k + 1) * W.shape[1]
    out_t, out_c, out_ud = output_buffers(pre_times.shape[0], n_o, n_max, dt)
    ev = _field_events(events, pre_times, pre_counts, in_shape, k, tau)
    consts = forward_constants(dt, tau_s, theta, reset, t_max)
    conv_forward_kernel(
        ev.t, ev.q, ev.row, ev.n, padded_rows(conv_rows(W)), W.shape[1], group, consts,
        in_shape[1] - k + 1, worker_count(), out_t, out_c, out_ud,
    )  # fmt: skip
    return out_t, out_c, out_ud


def conv_backward(
    pre_times,
    pre_counts,
    W,
    group,
    in_shape,
    post_times,
    post_counts,
    udot,
    phi,
    tau_s,
    reset,
    need_pre,
    events=None,
):
    """BATS backward of a conv layer (docs/conv-pool.md §2, docs/backward.md §6): ``(delta, grad [G,
    C_out, k, k, C_in] summed over positions and the samples of each group, phi_pre or None)``."""
    pre_times, pre_counts, W, group, in_shape, k = _conv_prep(
        pre_times, pre_counts, W, group, in_shape
    )
    dt = W.dtype
    n_b = pre_times.shape[0]
    n_o = (in_shape[0] - k + 1) * (in_shape[1] - k + 1) * W.shape[1]
    post_times, post_counts, udot, tau, delta = _post_errors(
        post_times, post_counts, udot, phi, n_b, n_o, dt, tau_s, reset
    )
    ev = _field_events(events, pre_times, pre_counts, in_shape, k, tau)
    rows = conv_rows(W)
    parts = np.empty((n_b, rows.shape[1], rows.shape[2]), dtype=dt)  # zeroed by the kernel
    phi_pre = np.empty_like(pre_times) if need_pre else np.empty((n_b, 1, 1), dtype=dt)
    tasks, starts = balanced_tasks(ev.n.sum(axis=1), worker_count())  # cost: field inputs
    conv_backward_kernel(
        ev.t, ev.q, ev.row, ev.src, ev.n, post_times, post_counts, delta, udot, rows, group,
        dt.type(1.0 / tau), bool(need_pre), tasks, starts, parts, phi_pre.reshape(n_b, -1),
    )  # fmt: skip
    grad_rows = np.zeros_like(rows)
    for b in range(n_b):  # sample order: deterministic
        grad_rows[group[b]] += parts[b]
    grad = np.ascontiguousarray(np.swapaxes(grad_rows, 1, 2)).reshape(W.shape)
    return delta, grad, (phi_pre if need_pre else None)


# --------------------------------------------------------------------------------------------
# Pool2D (docs/conv-pool.md §3)
# --------------------------------------------------------------------------------------------
def pool_forward(pre_times, pre_counts, in_shape, size: int):
    """Spike-aggregation pooling: ``(times [B, N_out, size^2 K] , counts, source)`` where
    ``source[b, j, s] = i K + z`` is the presynaptic slot of output slot s (-1 if empty)."""
    h_in, w_in, c_in = checked_shape(in_shape)
    size = int(size)
    if size < 1 or size > h_in or size > w_in:
        raise ValueError(f"pool size must be in [1, {min(h_in, w_in)}], got {size}")
    pre_times = np.ascontiguousarray(pre_times)
    if pre_times.dtype not in (np.float32, np.float64):
        raise TypeError(f"pre_times must be float32 or float64, got {pre_times.dtype}")
    check_counts(pre_times, pre_counts, "pre_")
    pre_counts = np.ascontiguousarray(pre_counts, dtype=np.int32)
    n_in = h_in * w_in * c_in
    if pre_times.ndim != 3 or pre_times.shape[1] != n_in or pre_counts.shape != pre_times.shape[:2]:
        raise ValueError(
            f"pre_times/pre_counts have shapes {pre_times.shape}/{pre_counts.shape}, expected "
            f"[B, {n_in}, K]/[B, {n_in}]"
        )
    n_b, _, n_k = pre_times.shape
    n_o = (h_in // size) * (w_in // size) * c_in
    out_t = np.empty((n_b, n_o, size * size * n_k), dtype=pre_times.dtype)  # all written
    out_c = np.empty((n_b, n_o), dtype=np.int32)
    source = np.empty(out_t.shape, dtype=np.int32)
    pool_forward_kernel(pre_times, pre_counts, h_in, w_in, c_in, size, out_t, out_c, source)
    return out_t, out_c, source


def pool_backward(phi, counts, source, pre_shape):
    """Errors of the pool's input spikes ``[B, N_in, K]`` (``pre_shape``): each output slot's
    error goes unchanged to its source slot; every other slot gets 0."""
    phi = np.ascontiguousarray(phi)
    if phi.shape != source.shape or counts.shape != phi.shape[:2]:
        raise ValueError(f"phi has shape {phi.shape}, expected {source.shape}")
    phi_pre = np.empty(tuple(pre_shape), dtype=phi.dtype)  # every element written
    pool_backward_kernel(phi, np.ascontiguousarray(counts, dtype=np.int32), source, phi_pre)
    return phi_pre
