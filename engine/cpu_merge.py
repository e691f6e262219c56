"""Input merging on the CPU: one time-sorted event list per sample (docs/forward.md §5).

The stable key is (t, i, slot): trains are collected in (i, slot) order and sorted stably by
time. Each event also carries the decay ``q = e^{-(t_n - t_{n-1})/tau}`` from the previous
event, shared by every post neuron that sees the same list (docs/forward.md §4).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .spikes import check_counts

JIT_PARALLEL = dict(parallel=True, nogil=True, cache=True, fastmath=False)
JIT_SERIAL = dict(nogil=True, cache=True, fastmath=False)
INSERTION_SORT_MAX = 32  # lists this short are sorted by insertion, longer ones by radix


@njit(**JIT_SERIAL)
def radix_order(keys, n_bytes, order, tmp_o, hist):
    """Stable LSD radix sort: ``order`` becomes the permutation sorting ``keys`` (uint64)."""
    m = keys.shape[0]
    for n in range(m):
        order[n] = n
    for byte in range(n_bytes):
        shift = np.uint64(8 * byte)
        hist[:] = 0
        for n in range(m):
            hist[(keys[n] >> shift) & np.uint64(255)] += 1
        if hist[(keys[0] >> shift) & np.uint64(255)] == m:
            continue  # every key has the same digit: nothing to do
        pos = 0
        for d in range(256):
            c = hist[d]
            hist[d] = pos
            pos += c
        for n in range(m):
            o = order[n]
            d = (keys[o] >> shift) & np.uint64(255)
            tmp_o[hist[d]] = o
            hist[d] += 1
        for n in range(m):
            order[n] = tmp_o[n]


@njit(**JIT_SERIAL)
def stable_order(keys, m, n_bytes, order, tmp_o, hist):
    """``order[:m]`` sorts ``keys[:m]`` stably: insertion sort for short lists, else radix."""
    if m > INSERTION_SORT_MAX:
        radix_order(keys[:m], n_bytes, order[:m], tmp_o[:m], hist)
        return
    for n in range(m):
        o = n
        a = n
        while a > 0 and keys[order[a - 1]] > keys[o]:
            order[a] = order[a - 1]
            a -= 1
        order[a] = o


@njit(**JIT_PARALLEL)
def _merge_kernel(pre_times, pre_bits, pre_counts, n_ev, inv_tau, ev_t, ev_i, ev_s, ev_q):
    """Merge the pre trains of each sample into ``ev_*[b, :n_ev[b]]`` sorted by (t, i, slot).

    The sort is a stable radix sort on the bit patterns of the times (``pre_bits``, the same
    memory viewed as unsigned integers; for t >= 0 they order like the values once the sign bit
    is cleared, which maps -0.0 to 0.0). Trains are collected in (i, slot) order, so stability
    gives the key (t, i, slot). ``ev_q[b, n] = exp(-(t_n - t_{n-1})/tau)`` (1 for n = 0) is the
    decay between consecutive inputs, shared by every post neuron (docs/forward.md §4).
    """
    n_b, n_i = pre_counts.shape
    n_bytes = pre_bits.itemsize
    sign = np.uint64(1) << np.uint64(8 * n_bytes - 1)
    for b in prange(n_b):
        m = n_ev[b]
        if m == 0:
            continue
        keys = np.empty(m, dtype=np.uint64)
        code = np.empty(m, dtype=np.int64)
        p = 0
        for i in range(n_i):
            for z in range(pre_counts[b, i]):
                keys[p] = np.uint64(pre_bits[b, i, z]) & ~sign
                code[p] = i * pre_times.shape[2] + z
                p += 1
        order = np.empty(m, dtype=np.int64)
        radix_order(
            keys, n_bytes, order, np.empty(m, dtype=np.int64), np.zeros(256, dtype=np.int64)
        )
        prev = pre_times.dtype.type(0)
        for n in range(m):
            c = code[order[n]]
            i = c // pre_times.shape[2]
            z = c - i * pre_times.shape[2]
            t = pre_times[b, i, z]
            if n == 0:
                prev = t
            ev_t[b, n] = t
            ev_i[b, n] = i
            ev_s[b, n] = z
            ev_q[b, n] = math.exp(-(t - prev) * inv_tau)
            prev = t


class Events(NamedTuple):
    """The merged input events of a layer, per sample: times ``t`` [B, M], pre neuron ``i``,
    slot ``s``, decay ``q = e^{-(t_n - t_{n-1})/tau}``, count ``n`` [B]; ``tau`` used for q."""

    t: np.ndarray
    i: np.ndarray
    s: np.ndarray
    q: np.ndarray
    n: np.ndarray
    tau: float


def time_bits(times: np.ndarray) -> np.ndarray:
    """The times' memory viewed as unsigned integers of the same width (sort keys)."""
    return times.view(np.uint32 if times.dtype == np.float32 else np.uint64)


def merge_inputs(pre_times: np.ndarray, pre_counts: np.ndarray, tau) -> Events:
    """Sorted events of each sample (stable key (t, i, slot)); reusable by ``dense_forward`` and
    ``dense_backward`` of the same layer and inputs through their ``events`` argument."""
    check_counts(pre_times, pre_counts, "pre_")
    pre_times = np.ascontiguousarray(pre_times)
    pre_counts = np.ascontiguousarray(pre_counts, dtype=np.int32)
    dt = pre_times.dtype
    n_ev = pre_counts.sum(axis=1, dtype=np.int64).astype(np.int32)
    m = max(int(n_ev.max()) if n_ev.size else 0, 1)
    b = pre_times.shape[0]
    ev_t = np.full((b, m), np.inf, dtype=dt)
    ev_i = np.zeros((b, m), dtype=np.int32)
    ev_s = np.zeros((b, m), dtype=np.int32)
    ev_q = np.ones((b, m), dtype=dt)
    bits = time_bits(pre_times)
    _merge_kernel(pre_times, bits, pre_counts, n_ev, dt.type(1.0 / tau), ev_t, ev_i, ev_s, ev_q)
    return Events(ev_t, ev_i, ev_s, ev_q, n_ev, float(tau))


def checked_events(events, pre_times, pre_counts, tau) -> Events:
    """``events`` checked against the layer, or merged now when None."""
    if events is None:
        return merge_inputs(pre_times, pre_counts, tau)
    if not isinstance(events, Events):
        raise TypeError(f"events must be an Events from merge_inputs, got {type(events).__name__}")
    if events.tau != tau or events.t.shape[0] != pre_times.shape[0]:
        raise ValueError("events were merged for another tau or batch")
    if events.t.dtype != pre_times.dtype:
        raise ValueError(f"events have dtype {events.t.dtype}, expected {pre_times.dtype}")
    if not _events_fit(events, pre_times, pre_counts):
        raise ValueError("events were merged from other inputs (counts or indices disagree)")
    return events


def _events_fit(ev: Events, pre_times, pre_counts) -> bool:
    """The kernels index the inputs and their own arrays by ``ev``: same layout, each sample's
    count, and neuron and slot indices inside the trains (else an out-of-bounds access)."""
    n_b, n_i, k_i = pre_times.shape
    if not (ev.t.ndim == 2 and ev.t.shape == ev.i.shape == ev.s.shape == ev.q.shape):
        return False
    if ev.n.shape != (n_b,) or not np.array_equal(ev.n, pre_counts.sum(axis=1)):
        return False
    if ev.n.max(initial=0) > ev.t.shape[1]:
        return False
    return ev.i.size == 0 or bool(
        ev.i.min() >= 0 and ev.i.max() < n_i and ev.s.min() >= 0 and ev.s.max() < k_i
    )
