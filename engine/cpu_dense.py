"""Dense connectivity on the CPU: every input event reaches every post neuron (docs/forward.md §5,
docs/backward.md).

Weights ``W[G, No, Ni]`` with ``group[b]`` in ``[0, G)`` selecting the weights of sample ``b``;
the kernels read them transposed, ``wt[G, Ni, No]``, so a weight row is contiguous over post
neurons. The neuron maths is engine/cpu_neuron.py's.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_merge import JIT_PARALLEL
from .cpu_neuron import (
    JIT_INLINE,
    accumulate_weight_gradient,
    add_later_spikes,
    inputs_before,
    presynaptic_error,
    simulate_block,
)

FORWARD_BLOCK = 256  # post neurons per task of the forward kernel


def transpose(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` [G, A, B] with the last two axes swapped."""
    return np.ascontiguousarray(np.swapaxes(a, 1, 2))


@njit(**JIT_PARALLEL)
def dense_forward_kernel(ev_t, ev_i, ev_q, n_ev, wt, group, consts, block, out_t, out_c, out_ud):
    """Spike times of every (sample, post neuron): the sample's merged inputs drive blocks of
    ``block`` post neurons through :func:`simulate_block` (parallel over sample x block, in
    contiguous shares: a sample's blocks stay on one thread, with its inputs in its cache)."""
    n_b = ev_t.shape[0]
    n_o = wt.shape[2]
    n_blk = (n_o + block - 1) // block
    for p in prange(n_b * n_blk):
        b = p // n_blk
        j0 = (p - b * n_blk) * block
        nj = min(block, n_o - j0)
        simulate_block(
            ev_t[b], ev_q[b], ev_i[b], n_ev[b], wt[group[b]], j0, nj, nj, consts, b, j0,
            out_t, out_c, out_ud,
        )  # fmt: skip


@njit(**JIT_PARALLEL)
def _bucket_kernel(ev_t, n_ev, post_t, post_c, head, item, top):
    """Group each sample's post spikes by the number ``pos`` of inputs strictly before them
    (t_{pos-1} < t_k <= t_pos): bucket ``pos`` of sample b holds the codes ``j * S + k`` in
    ``item[b, head[b, pos]:head[b, pos + 1]]``; ``top[b]`` is the largest pos (0 if none)."""
    n_b, n_o, n_s = post_t.shape
    for b in prange(n_b):
        m = n_ev[b]
        hb = head[b]
        spos = np.empty(item.shape[1], dtype=np.int64)
        p = 0
        tb = 0
        for j in range(n_o):
            pos = 0
            for k in range(post_c[b, j]):
                pos = inputs_before(ev_t[b], pos, m, post_t[b, j, k])  # the spikes are sorted
                spos[p] = pos
                p += 1
                hb[pos + 1] += 1
                tb = max(tb, pos)
        for pos in range(m + 1):
            hb[pos + 1] += hb[pos]
        p = 0
        for j in range(n_o):
            for k in range(post_c[b, j]):
                pos = spos[p]
                p += 1
                item[b, hb[pos]] = j * n_s + k
                hb[pos] += 1
        for pos in range(m, 0, -1):  # undo the shift of the fill
            hb[pos] = hb[pos - 1]
        hb[0] = 0
        top[b] = tb


def bucket_spikes(ev, post_t, post_c):
    """``(head [B, M+2], item [B, max spikes], top [B])`` of :func:`_bucket_kernel`."""
    n_b = post_t.shape[0]
    n_max = max(int(post_c.sum(axis=1).max()) if n_b else 0, 1)
    head = np.zeros((n_b, ev.t.shape[1] + 2), dtype=np.int64)
    item = np.zeros((n_b, n_max), dtype=np.int64)
    top = np.zeros(n_b, dtype=np.int64)
    _bucket_kernel(ev.t, ev.n, post_t, post_c, head, item, top)
    return head, item, top


@njit(**JIT_INLINE)
def dense_gradient_kernel(
    ev_t, ev_i, ev_q, head, item, top, post_t, delta, udot, order, gstart, inv_tau, n_chunk,
    block, p, s1, s2, parts,
):  # fmt: skip
    """dL/dw_ji = -sum_k r_k sum_{z: t_iz < t_k} eps(t_k - t_iz)  (paper Eq. 12-13,
    docs/backward.md §4), for task p = (group, chunk of its samples, block of post neurons).

    Per sample, sweep the inputs backwards keeping per neuron
    S1 = sum_{k: t_k > t_n} r_k e^{-(t_k - t_n)/tau} and S2 (the same with 2/tau), decayed from
    t_n to t_{n-1} by the shared factor e^{-(t_n - t_{n-1})/tau}; then
    sum_k r_k eps(t_k - t_n) = tau (S1 - S2), every exponent <= 0. ``parts`` is
    [n_chunk, G, Ni, No]; the caller sums the chunks in order. The post spikes come bucketed by
    ``_bucket_kernel`` (``head``, ``item``, ``top``); ``s1``, ``s2`` are scratch.
    """
    _, n_g, _, n_o = parts.shape
    n_s = post_t.shape[2]
    tau = (inv_tau / inv_tau) / inv_tau
    n_blk = (n_o + block - 1) // block
    gi = p // (n_chunk * n_blk)
    rest = p - gi * n_chunk * n_blk
    ch = rest // n_blk
    j0 = (rest - ch * n_blk) * block
    nj = min(block, n_o - j0)
    size = gstart[gi + 1] - gstart[gi]
    o_lo = gstart[gi] + (size * ch) // n_chunk
    o_hi = gstart[gi] + (size * (ch + 1)) // n_chunk
    s1 = s1[:nj]
    s2 = s2[:nj]
    for o in range(o_lo, o_hi):
        b = order[o]
        if top[b] == 0:
            continue
        s1[:] = 0
        s2[:] = 0
        item_b = item[b]
        for n in range(top[b] - 1, -1, -1):
            t_n = ev_t[b, n]
            add_later_spikes(
                head[b, n + 1], head[b, n + 2], item_b, n_s, t_n, j0, nj, post_t, delta, udot,
                b, inv_tau, s1, s2,
            )  # fmt: skip
            q = ev_q[b, n]
            accumulate_weight_gradient(
                parts[ch, gi, ev_i[b, n], j0 : j0 + nj], s1, s2, tau, q, q * q
            )


@njit(**JIT_INLINE)
def dense_presynaptic_kernel(
    ev_t, ev_i, ev_s, ev_q, head, item, top, post_t, delta, udot, wt, group, inv_tau, b, s1, s2,
    prod, lanes, phi_pre,
):  # fmt: skip
    """phi_iz = sum_j w_ji sum_{k: t_jk > t_iz} r_jk eps'(t_jk - t_iz)  (paper Eq. 18-19,
    docs/backward.md §5) of sample b's input spikes (its rows of ``phi_pre``).

    eps'(s) = 2e^{-2s/tau} - e^{-s/tau}, so the inner sum is 2 S2 - S1 with the suffix sums of
    :func:`dense_gradient_kernel`. ``wt`` is W transposed, [G, Ni, No]; ``s1``, ``s2``,
    ``prod`` [No] and ``lanes`` [4] are scratch.
    """
    n_o = wt.shape[2]
    n_s = post_t.shape[2]
    gi = group[b]
    item_b = item[b]
    s1 = s1[:n_o]
    s2 = s2[:n_o]
    s1[:] = 0
    s2[:] = 0
    phi_pre[b] = 0  # slots of inputs after the last post spike, and empty slots
    for n in range(top[b] - 1, -1, -1):
        t_n = ev_t[b, n]
        add_later_spikes(
            head[b, n + 1], head[b, n + 2], item_b, n_s, t_n, 0, n_o, post_t, delta, udot, b,
            inv_tau, s1, s2,
        )  # fmt: skip
        q = ev_q[b, n]
        i = ev_i[b, n]
        phi_pre[b, i, ev_s[b, n]] = presynaptic_error(wt[gi, i], s1, s2, q, q * q, prod, lanes)


@njit(**JIT_PARALLEL)
def dense_backward_kernel(
    ev_t, ev_i, ev_s, ev_q, head, item, top, post_t, delta, udot, order, gstart, inv_tau,
    n_chunk, block, wt, group, tasks, starts, parts, phi_pre,
):  # fmt: skip
    """The weight gradient and the errors to presynaptic spikes of a dense layer in one parallel
    pass (docs/backward.md §4, §5): tasks 0 .. n_grad - 1 are the (group, chunk, block) tasks
    of :func:`dense_gradient_kernel`, the next ones the samples of
    :func:`dense_presynaptic_kernel` (none when ``phi_pre`` is not wanted); worker w takes the
    tasks ``tasks[starts[w]:starts[w+1]]`` of engine/cpu_schedule.balanced_tasks, so the
    gradient's few large tasks run beside the samples' errors."""
    _, n_g, _, n_o = parts.shape
    n_grad = n_g * n_chunk * ((n_o + block - 1) // block)
    for wk in prange(starts.shape[0] - 1):
        s1 = np.empty(max(block, n_o), dtype=parts.dtype)
        s2 = np.empty(max(block, n_o), dtype=parts.dtype)
        prod = np.empty(n_o, dtype=parts.dtype)
        lanes = np.empty(4, dtype=parts.dtype)
        for task in range(starts[wk], starts[wk + 1]):
            p = tasks[task]
            if p < n_grad:
                dense_gradient_kernel(
                    ev_t, ev_i, ev_q, head, item, top, post_t, delta, udot, order, gstart,
                    inv_tau, n_chunk, block, p, s1, s2, parts,
                )  # fmt: skip
            else:
                dense_presynaptic_kernel(
                    ev_t, ev_i, ev_s, ev_q, head, item, top, post_t, delta, udot, wt, group,
                    inv_tau, p - n_grad, s1, s2, prod, lanes, phi_pre,
                )  # fmt: skip
