"""Convolution connectivity on the CPU: valid cross-correlation, stride 1 (docs/conv-pool.md §2).

Input (H, W, C_in), output (H - k + 1, W - k + 1, C_out), neurons flattened channels-last,
row-major: pre (r, c, ci) is neuron (r W + c) C_in + ci. All C_out neurons of one output
position share a receptive field, so they share one input list: the spikes of the field only,
merged per (sample, position) with the stable key (t, i, slot) of docs/forward.md §5. The weights
``W[G, C_out, k, k, C_in]`` are read as rows ``w_rows[G, (p k + q) C_in + ci, C_out]``. The
neuron maths is engine/cpu_neuron.py's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .cpu_merge import JIT_PARALLEL, stable_order
from .cpu_neuron import (
    JIT_INLINE,
    accumulate_weight_gradient,
    add_later_spikes,
    gradient_and_presynaptic_error,
    inputs_before,
    simulate_block,
)


class FieldEvents(NamedTuple):
    """Merged inputs of each (sample, output position) [B, P, M] (entries past ``n`` undefined):
    times ``t``, decays ``q``,
    weight row ``row = (p k + q) C_in + ci``, presynaptic slot ``src = i K + z``, count ``n``
    [B, P]; ``tau`` used for q; ``in_shape`` (H, W, C_in) and ``k`` of the layer."""

    t: np.ndarray
    q: np.ndarray
    row: np.ndarray
    src: np.ndarray
    n: np.ndarray
    tau: float
    in_shape: tuple
    k: int


@njit(**JIT_PARALLEL)
def field_counts(pre_counts, h_in, w_in, c_in, k, n_ev):
    """``n_ev[b, pos]``: spikes in the receptive field of output position pos."""
    n_b, n_p = n_ev.shape
    w_out = w_in - k + 1
    for p in prange(n_b * n_p):
        b = p // n_p
        pos = p - b * n_p
        r = pos // w_out
        c = pos - r * w_out
        m = 0
        for dr in range(k):
            for dc in range(k):
                i0 = ((r + dr) * w_in + c + dc) * c_in
                for ci in range(c_in):
                    m += pre_counts[b, i0 + ci]
        n_ev[b, pos] = m


@njit(**JIT_PARALLEL)
def lists_disagreeing(pre_counts, h_in, w_in, c_in, k, n_ev, ev_row, ev_src, n_rows, n_slots):
    """Number of lists (b, pos) whose count ``n_ev[b, pos]`` is not the number of spikes in the
    field or exceeds the lists' length, or that hold a weight row outside [0, n_rows) or a
    presynaptic slot outside [0, n_slots) in their first ``n_ev[b, pos]`` entries."""
    n_b, n_p = n_ev.shape
    w_out = w_in - k + 1
    m_max = ev_row.shape[2]
    rows_hi = np.uint32(n_rows)
    slots_hi = np.uint32(n_slots)
    bad = 0
    for p in prange(n_b * n_p):
        b = p // n_p
        pos = p - b * n_p
        r = pos // w_out
        c = pos - r * w_out
        m = 0
        for dr in range(k):
            i0 = ((r + dr) * w_in + c) * c_in
            for i in range(i0, i0 + k * c_in):
                m += pre_counts[b, i]
        n = n_ev[b, pos]
        out = (n != m) | (n > m_max)
        rows = ev_row[b, pos]
        srcs = ev_src[b, pos]
        for a in range(min(n, m_max)):  # unsigned: a negative index is out of range too
            out |= (np.uint32(rows[a]) >= rows_hi) | (np.uint32(srcs[a]) >= slots_hi)
        bad += out
    return bad


@njit(**JIT_PARALLEL)
def _field_merge_kernel(
    pre_times, pre_bits, pre_counts, h_in, w_in, c_in, k, n_ev, inv_tau, n_workers, ev_t, ev_q,
    ev_row, ev_src,
):  # fmt: skip
    """Fill ``ev_*[b, pos, :n_ev[b, pos]]`` with the field's spikes sorted by (t, i, slot).

    One task per (sample, output row r), dealt to ``n_workers`` workers in turn
    (engine/cpu_schedule.py): the spikes of input rows r .. r+k-1 (the band shared by the row's
    fields) are collected in increasing (i, slot) order, with their weight row at field column 0
    and their input column, and sorted once, stably, by the times' bit patterns (sign bit
    cleared, as engine/cpu_merge.py). One pass over the sorted band appends each spike to the
    lists of the (at most k) fields whose columns hold it, so each list keeps the key
    (t, i, slot). The decay q = e^{-(t - prev)/tau} of a field entry depends only on
    (t, prev): a spike whose fields share their previous time reuses the value (same
    arguments, same result), so exp runs about once per distinct pair.
    """
    n_b, n_p = n_ev.shape
    w_out = w_in - k + 1
    h_out = n_p // w_out
    n_k = pre_times.shape[2]
    n_bytes = pre_bits.itemsize
    sign = np.uint64(1) << np.uint64(8 * n_bytes - 1)
    band_max = k * w_in * c_in * n_k
    for wk in prange(n_workers):
        keys = np.empty(band_max, dtype=np.uint64)
        times = np.empty(band_max, dtype=pre_times.dtype)
        code = np.empty(band_max, dtype=np.int64)  # presynaptic slot i K + z
        row0 = np.empty(band_max, dtype=np.int64)  # weight row at field column 0
        col = np.empty(band_max, dtype=np.int64)  # input column
        order = np.empty(band_max, dtype=np.int64)
        tmp = np.empty(band_max, dtype=np.int64)
        hist = np.zeros(256, dtype=np.int64)
        count = np.empty(w_out, dtype=np.int64)  # entries so far in each field of the row
        prev = np.empty(w_out, dtype=pre_times.dtype)  # each field's last time
        for task in range(wk, n_b * h_out, n_workers):
            b = task // h_out
            r = task - b * h_out
            m = 0
            for dr in range(k):
                for cc in range(w_in):
                    i0 = ((r + dr) * w_in + cc) * c_in
                    for ci in range(c_in):
                        for z in range(pre_counts[b, i0 + ci]):
                            keys[m] = np.uint64(pre_bits[b, i0 + ci, z]) & ~sign
                            times[m] = pre_times[b, i0 + ci, z]
                            code[m] = (i0 + ci) * n_k + z
                            row0[m] = (dr * k + cc) * c_in + ci
                            col[m] = cc
                            m += 1
            if m == 0:
                continue
            stable_order(keys, m, n_bytes, order, tmp, hist)
            count[:] = 0
            for n in range(m):  # the band in sorted order
                o = order[n]
                t = times[o]
                src = code[o]
                base = row0[o]
                cc = col[o]
                p_last = t
                q_last = math.exp(-(t - t) * inv_tau)
                for c in range(max(0, cc - k + 1), min(cc, w_out - 1) + 1):
                    pos = r * w_out + c
                    a = count[c]
                    p = t if a == 0 else prev[c]
                    if p != p_last:
                        p_last = p
                        q_last = math.exp(-(t - p) * inv_tau)
                    ev_t[b, pos, a] = t
                    ev_q[b, pos, a] = q_last
                    ev_row[b, pos, a] = base - c * c_in  # (dr k + col - c) C_in + ci
                    ev_src[b, pos, a] = src
                    prev[c] = t
                    count[c] = a + 1


def merge_receptive_fields(
    pre_times, pre_counts, in_shape, k: int, tau, bits, n_workers: int
) -> FieldEvents:
    """The sorted input list of every (sample, output position); ``bits``: the times' memory
    as unsigned integers (engine/cpu_merge.time_bits); ``n_workers``: one per thread
    (engine/cpu_schedule.py)."""
    h_in, w_in, c_in = in_shape
    n_b = pre_times.shape[0]
    n_p = (h_in - k + 1) * (w_in - k + 1)
    dt = pre_times.dtype
    n_ev = np.zeros((n_b, n_p), dtype=np.int32)
    field_counts(pre_counts, h_in, w_in, c_in, k, n_ev)
    m = max(int(n_ev.max()) if n_ev.size else 0, 1)
    ev_t = np.empty((n_b, n_p, m), dtype=dt)  # entries past n[b, pos] are never read
    ev_q = np.empty((n_b, n_p, m), dtype=dt)
    ev_row = np.empty((n_b, n_p, m), dtype=np.int32)
    ev_src = np.empty((n_b, n_p, m), dtype=np.int32)
    _field_merge_kernel(
        pre_times, bits, pre_counts, h_in, w_in, c_in, k, n_ev, dt.type(1.0 / tau), n_workers,
        ev_t, ev_q, ev_row, ev_src,
    )  # fmt: skip
    return FieldEvents(ev_t, ev_q, ev_row, ev_src, n_ev, float(tau), tuple(in_shape), int(k))


@njit(**JIT_PARALLEL)
def conv_forward_kernel(
    ev_t, ev_q, ev_row, n_ev, w_rows, n_c, group, consts, w_out, n_workers, out_t, out_c, out_ud
):
    """Spike times of every (sample, output position): its ``n_c`` = C_out neurons run
    :func:`simulate_block` on the position's field list, with the weight rows ``w_rows``
    [G, R, >= n_c] zero-padded (engine/cpu.padded_rows). One task per (sample, output row of
    ``w_out`` positions, whose neurons are adjacent in memory), dealt to ``n_workers`` workers
    in turn (engine/cpu_schedule.py)."""
    n_b, n_p = n_ev.shape
    n_pad = w_rows.shape[2]
    h_out = n_p // w_out
    for wk in prange(n_workers):
        for task in range(wk, n_b * h_out, n_workers):
            b = task // h_out
            for pos in range((task - b * h_out) * w_out, (task - b * h_out + 1) * w_out):
                if n_ev[b, pos] == 0:  # no input: silent (docs/forward.md §6.8)
                    out_t[b, pos * n_c : (pos + 1) * n_c] = np.inf
                    out_c[b, pos * n_c : (pos + 1) * n_c] = 0
                    out_ud[b, pos * n_c : (pos + 1) * n_c] = 0
                    continue
                simulate_block(
                    ev_t[b, pos], ev_q[b, pos], ev_row[b, pos], n_ev[b, pos], w_rows[group[b]],
                    0, n_pad, n_c, consts, b, pos * n_c, out_t, out_c, out_ud,
                )  # fmt: skip


@njit(**JIT_INLINE)
def conv_backward_sample(
    ev_t, ev_q, ev_row, ev_src, n_ev, post_t, post_c, delta, udot, w, b, inv_tau, tau,
    need_pre, parts, phi_pre, head, item, spos, s1, s2, prod, lanes,
):  # fmt: skip
    """:func:`conv_backward_kernel` for sample b, weights ``w`` [R, C_out], its gradient rows
    ``parts`` and errors ``phi_pre`` [N_in K_in] (both zeroed here first); the other arrays are
    scratch."""
    n_p = n_ev.shape[1]
    n_s = post_t.shape[2]
    n_c = w.shape[1]
    parts[:] = 0
    phi_pre[:] = 0
    for pos in range(n_p):
        m = n_ev[b, pos]
        if m == 0:
            continue
        j0 = pos * n_c
        et = ev_t[b, pos]
        head[: m + 2] = 0
        n_sp = 0
        top = 0
        for jj in range(n_c):
            at = 0
            for k in range(post_c[b, j0 + jj]):
                at = inputs_before(et, at, m, post_t[b, j0 + jj, k])
                spos[n_sp] = at
                n_sp += 1
                head[at + 1] += 1
                top = max(top, at)
        if n_sp == 0:
            continue
        for a in range(m + 1):
            head[a + 1] += head[a]
        n_sp = 0
        for jj in range(n_c):
            for k in range(post_c[b, j0 + jj]):
                at = spos[n_sp]
                n_sp += 1
                item[head[at]] = (j0 + jj) * n_s + k
                head[at] += 1
        for a in range(m, 0, -1):  # undo the shift of the fill
            head[a] = head[a - 1]
        head[0] = 0
        s1[:] = 0
        s2[:] = 0
        for n in range(top - 1, -1, -1):
            t_n = et[n]
            add_later_spikes(
                head[n + 1], head[n + 2], item, n_s, t_n, j0, n_c, post_t, delta, udot, b,
                inv_tau, s1, s2,
            )  # fmt: skip
            row = ev_row[b, pos, n]
            q = ev_q[b, pos, n]
            if need_pre:
                phi_pre[ev_src[b, pos, n]] += gradient_and_presynaptic_error(
                    w[row], parts[row], s1, s2, tau, q, q * q, prod, lanes
                )
            else:
                accumulate_weight_gradient(parts[row], s1, s2, tau, q, q * q)


@njit(**JIT_PARALLEL)
def conv_backward_kernel(
    ev_t, ev_q, ev_row, ev_src, n_ev, post_t, post_c, delta, udot, w_rows, group, inv_tau,
    need_pre, tasks, starts, parts, phi_pre,
):  # fmt: skip
    """Shared-weight gradient and errors to presynaptic spikes (docs/conv-pool.md §2,
    docs/backward.md §4, §5).

    Per sample (each owns ``parts[b]`` [R, C_out] and its row of ``phi_pre`` [B, N_in K_in],
    indexed by the presynaptic slot; worker w takes the samples ``tasks[starts[w]:starts[w+1]]``
    of engine/cpu_schedule.balanced_tasks), per output position: bucket the C_out neurons'
    spikes by the number of field inputs before them, then sweep the field list backwards with
    the suffix sums S1, S2 of engine/cpu_neuron.py: G[row, c] -= tau (S1 - S2) (paper Eq. 12-13)
    and phi_pre[src] += sum_c w[row, c] (2 S2 - S1) (paper Eq. 18-19), summed
    over every position whose field holds that spike.
    """
    n_s = post_t.shape[2]
    n_c = w_rows.shape[2]
    tau = (inv_tau / inv_tau) / inv_tau
    m_max = ev_t.shape[2]
    for wk in prange(starts.shape[0] - 1):
        head = np.zeros(m_max + 2, dtype=np.int64)
        item = np.empty(n_c * n_s, dtype=np.int64)
        spos = np.empty(n_c * n_s, dtype=np.int64)
        s1 = np.zeros(n_c, dtype=w_rows.dtype)
        s2 = np.zeros(n_c, dtype=w_rows.dtype)
        prod = np.empty(n_c, dtype=w_rows.dtype)
        lanes = np.empty(4, dtype=w_rows.dtype)
        for task in range(starts[wk], starts[wk + 1]):
            b = tasks[task]
            conv_backward_sample(
                ev_t, ev_q, ev_row, ev_src, n_ev, post_t, post_c, delta, udot, w_rows[group[b]],
                b, inv_tau, tau, need_pre, parts[b], phi_pre[b], head, item, spos, s1, s2, prod,
                lanes,
            )  # fmt: skip
