"""CPU backend: Numba kernels of the exact event loop and the BATS backward pass.

Every kernel runs in the dtype of its arrays (float32 or float64): the wrappers cast the scalar
constants to that dtype so Numba specialises the whole kernel. The state is carried in the
re-centred form of method.md §3.4, so every exponent is <= 0 and nothing overflows. One
exception to the dtype rule: the forward keeps each neuron's last event time t_r in float64, and
solves the rare candidates that pass its per-input pre-test in float64 from the dtype's state
(g, u) (``_emit``). In float32 the rounding of an absolute time (about 1e-6 s at t = 10 s) then
neither accumulates along a chain of spikes nor decides (E4)-(E6); stored float32 times may tie
with the previous event. engine/cuda/dense.cuh does the same arithmetic, operation by operation.

Shapes (method.md §0): pre/post times ``[B, N, S]`` (+inf padded), counts ``[B, N]`` int32,
weights ``W[G, No, Ni]`` with ``group[b]`` in ``[0, G)`` selecting the weights of sample ``b``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from .spikes import check_counts
from .threads import select_threading_layer

select_threading_layer()  # OpenMP or TBB before any parallel kernel runs, never workqueue

_JIT = dict(parallel=True, nogil=True, cache=True, fastmath=False)
FORWARD_BLOCK = 256  # post neurons per task of the forward kernel


def transpose(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``a`` [G, A, B] with the last two axes swapped."""
    return np.ascontiguousarray(np.swapaxes(a, 1, 2))


# --------------------------------------------------------------------------------------------
# Input merge: one sorted event list per sample (method.md §4, stable key (t, i, slot)).
# --------------------------------------------------------------------------------------------
@njit(nogil=True, cache=True, fastmath=False)
def _radix_order(keys, n_bytes, order, tmp_o, hist):
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


@njit(**_JIT)
def _merge_kernel(pre_times, pre_bits, pre_counts, n_ev, inv_tau, ev_t, ev_i, ev_s, ev_q):
    """Merge the pre trains of each sample into ``ev_*[b, :n_ev[b]]`` sorted by (t, i, slot).

    The sort is a stable radix sort on the bit patterns of the times (``pre_bits``, the same
    memory viewed as unsigned integers; for t >= 0 they order like the values once the sign bit
    is cleared, which maps -0.0 to 0.0). Trains are collected in (i, slot) order, so stability
    gives the key (t, i, slot). ``ev_q[b, n] = exp(-(t_n - t_{n-1})/tau)`` (1 for n = 0) is the
    decay between consecutive inputs, shared by every post neuron (method.md §3.4).
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
        _radix_order(
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
    bits = pre_times.view(np.uint32 if dt == np.float32 else np.uint64)
    _merge_kernel(pre_times, bits, pre_counts, n_ev, dt.type(1.0 / tau), ev_t, ev_i, ev_s, ev_q)
    return Events(ev_t, ev_i, ev_s, ev_q, n_ev, float(tau))


def _events(events, pre_times, pre_counts, tau) -> Events:
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


# --------------------------------------------------------------------------------------------
# Forward: the exact event loop (method.md §4), re-centred state (g, u) at t_r (§3.4).
# --------------------------------------------------------------------------------------------
@njit(nogil=True, cache=True, fastmath=False, inline="always")
def _emit(b, j, t_r, nxt, qn, g, u, k, consts, out_t, out_ud):
    """Spikes of one neuron in (t_r, nxt] from the state (g, u) at t_r (method.md §4).

    Accept-only-if tests (E1)-(E7); each spike stores t_k and u_dot_k = g(t_k) - c (§3.3/§5).
    ``qn = e^{-(nxt - t_r)/tau}`` is the decay the next input's advance will use. Returns
    ``(g, u, k, qn)`` with ``qn`` for the last spike. engine/cuda/dense.cuh mirrors this.

    Precision: the state (g, u) and the pre-test are in the arrays' dtype, bit-identical to
    ``_advance``; a candidate that passes it (about one per spike) is solved in float64 from
    that state, with the dtype's constants: D = B'^2 - 4A'c cancels near a tangency (§14.4), so
    the time is as exact as the state, not as the dtype's root. t_r and t are float64.

    Rounding consistency (§4 note 4: no interval starts above threshold): a candidate outside
    (t_r, nxt] is rejected only if the advance to nxt, computed exactly as the next input will
    compute it, leaves u < theta. Otherwise the crossing lies in (t_r, nxt] up to rounding, and
    its time is clamped into the interval: to nxt (E6 failed by rounding) or to t_r (E4 failed:
    y rounded to <= 1). Rejecting it would start the next interval at u >= theta, where the
    upward root lies in the past (y <= 1), and the neuron would lose this and every later
    spike. A spike clamped to nxt coincides with that input, which is then not part of its A
    and B (§4 note 1): consistent with the backward's strict comparisons (§6.3, §6.4). One
    clamped to t_r follows the input at t_r within rounding; the strict comparisons then drop
    that input's w eps'(0+)/u_dot = w/u_dot from phi_pre (the one-sided derivative at the kink,
    §6.4), while the weight gradient is exact as eps(0) = 0.
    """
    tau, c, four_c, theta, u_reset, t_max, lo, hi = consts
    one = tau / tau
    inv_tau = one / tau
    zero = tau - tau
    tau_d = np.float64(tau)  # the dtype's constants, in float64 for the root
    inv_tau_d = 1.0 / tau_d
    n_s = out_t.shape[2]
    while k < n_s:  # (E7) buffer full: no later spike
        bp = g + u * inv_tau  # B' = g + u/tau, A' = g   (§3.4)
        d = bp * bp - four_c * g  # D = B'^2 - 4 A' c   (paper Eq. 9)
        den = bp + math.sqrt(d if d > zero else zero)
        g2 = g + g
        # pre-test, as _advance: y > lo (E3, E4 within rounding), y qn <= hi (E6 within rounding)
        if not ((d >= zero) & (den > zero) & (g2 > lo * den) & (g2 * qn <= hi * den)):
            break
        gd = np.float64(g)
        bp_d = gd + np.float64(u) * inv_tau_d
        d_d = bp_d * bp_d - np.float64(four_c) * gd
        if not (d_d >= 0.0):  # (E1)
            break
        den_d = bp_d + math.sqrt(d_d)
        if not (den_d > 0.0):  # (E2); then y > 0 (E3) as A' = g > 0
            break
        y = (gd + gd) / den_d  # y' = 2A'/(B' + x')   (paper Eq. 10)
        t = t_r + tau_d * math.log(y)
        if (y > 1.0) & (t <= nxt):  # (E4) y > 1 <=> t > t_r = last;  (E6)
            qs = 1.0 / y  # e^{-(t - t_r)/tau}
        else:  # rounding consistency (docstring)
            if not (u * qn + tau * g * (qn - qn * qn) >= theta):  # u(nxt), as the next advance
                break
            if y > 1.0:
                t = np.float64(nxt)
                qs = np.float64(qn)
            else:
                t = t_r
                qs = 1.0
        if not (t <= t_max):  # (E5)
            break
        gd = gd * (qs * qs)  # g(t_k)
        out_t[b, j, k] = t
        out_ud[b, j, k] = gd - np.float64(c)  # u_dot_k = g(t_k) - theta/tau
        g = type(tau)(gd)
        u = u_reset  # u <- theta - reset
        t_r = t
        k += 1
        qn = math.exp(type(tau)(t_r - nxt) * inv_tau)  # 0 when nxt = +inf
    return g, u, k, qn


@njit(nogil=True, cache=True, fastmath=False)
def _advance(u, g, w, live, flag, q, qq, consts, qn):
    """Advance the block's (g, u) from t_{n-1} to t_n, add the input, flag candidates (SIMD loop).

    The flag is _emit's pre-test (conservative): the root y = e^{(t - t_n)/tau} = 2A'/(B' + x')
    satisfies y > lo and y e^{-(t_{n+1} - t_n)/tau} <= hi; ``lo``/``hi`` widen (1, 1] by the
    rounding of y and t. Returns the number of flagged neurons.
    """
    tau, _, four_c, _, _, _, lo, hi = consts
    zero = tau - tau
    inv_tau = (tau / tau) / tau
    n_flag = 0
    for jj in range(u.shape[0]):
        uj = u[jj] * q + tau * g[jj] * (q - qq)  # §3.4 advance
        gj = g[jj] * qq + w[jj]  # input of weight w
        u[jj] = uj
        g[jj] = gj
        bp = gj + uj * inv_tau  # B'
        d = bp * bp - four_c * gj  # D
        den = bp + math.sqrt(d if d > zero else zero)
        g2 = gj + gj
        f = (d >= zero) & (den > zero) & (g2 > lo * den) & (g2 * qn <= hi * den)
        f = f & (live[jj] != 0)
        flag[jj] = f
        n_flag += f
    return n_flag


@njit(**_JIT)
def _forward_kernel(ev_t, ev_i, ev_q, n_ev, wt, group, consts, block, out_t, out_c, out_ud):
    """The event loop of method.md §4 for every (sample, post neuron), re-centred (§3.4).

    Per sample and block of post neurons, inputs are processed in order. For input n, one loop
    over the block (SIMD-friendly: ``wt`` is ``W`` transposed to [G, Ni, No]) advances (g, u)
    from t_{n-1} to t_n, adds the weight, and applies a conservative pre-test flagging the
    neurons whose next upward crossing may lie in (t_n, t_{n+1}]. Neurons that spiked since
    t_{n-1} are then redone from their last spike. Only flagged neurons run the exact
    accept-only-if tests (``_emit``). The arithmetic per neuron is that of a plain per-neuron
    loop (engine/cuda/dense.cuh), so results do not depend on ``block``.
    """
    tau, _, four_c, _, _, t_max, lo, hi = consts
    zero = tau - tau
    one = tau / tau
    inv_tau = one / tau
    n_b = ev_t.shape[0]
    n_o = wt.shape[2]
    n_s = out_t.shape[2]
    n_blk = (n_o + block - 1) // block
    for p in prange(n_b * n_blk):
        b = p // n_blk
        j0 = (p - b * n_blk) * block
        nj = min(block, n_o - j0)
        nw = (nj + 7) // 8
        gi = group[b]
        m = n_ev[b]
        g = np.zeros(nj, dtype=wt.dtype)  # A' = g(t_r)
        u = np.zeros(nj, dtype=wt.dtype)  # u(t_r)
        live = np.ones(nj, dtype=np.uint8)  # buffer not full
        flag = np.zeros(8 * nw, dtype=np.uint8)
        words = flag.view(np.uint64)
        cnt = np.zeros(nj, dtype=np.int32)
        # neurons that spiked in the last interval: index, state at their last spike and the
        # decay from it to the next input
        sp_j = np.empty(nj, dtype=np.int64)
        sp_g = np.empty(nj, dtype=wt.dtype)
        sp_u = np.empty(nj, dtype=wt.dtype)
        sp_q = np.empty(nj, dtype=wt.dtype)
        n_sp = 0
        for n in range(m):
            t_n = ev_t[b, n]
            if t_n > t_max:  # §4.6: later inputs can only give rejected candidates
                break
            q = ev_q[b, n]  # e^{-(t_n - t_{n-1})/tau}
            qq = q * q  # e^{-(t_n - t_{n-1})/tau_s}
            i = ev_i[b, n]
            if n + 1 < m:
                nxt = ev_t[b, n + 1]
                qn = ev_q[b, n + 1]
            else:
                nxt = np.inf
                qn = zero
            n_flag = _advance(u, g, wt[gi, i, j0 : j0 + nj], live, flag, q, qq, consts, qn)
            for a in range(n_sp):  # redo the neurons that spiked since t_{n-1}
                jj = sp_j[a]
                qj = sp_q[a]  # e^{-(t_n - t_k)/tau}, computed by _emit
                qqj = qj * qj
                uj = sp_u[a] * qj + tau * sp_g[a] * (qj - qqj)
                gj = sp_g[a] * qqj + wt[gi, i, j0 + jj]
                u[jj] = uj
                g[jj] = gj
                bp = gj + uj * inv_tau
                d = bp * bp - four_c * gj
                den = bp + math.sqrt(d if d > zero else zero)
                g2 = gj + gj
                f = (d >= zero) & (den > zero) & (g2 > lo * den) & (g2 * qn <= hi * den)
                f = f & (live[jj] != 0)
                n_flag += np.int64(f) - np.int64(flag[jj])
                flag[jj] = f
            n_sp = 0
            if n_flag == 0:
                continue
            for w8 in range(nw):
                if words[w8] == 0:
                    continue
                for jj in range(8 * w8, min(8 * w8 + 8, nj)):
                    if flag[jj] == 0:
                        continue
                    k0 = cnt[jj]
                    gj, uj, k, q_sp = _emit(
                        b,
                        j0 + jj,
                        np.float64(t_n),
                        nxt,
                        qn,
                        g[jj],
                        u[jj],
                        k0,
                        consts,
                        out_t,
                        out_ud,
                    )
                    g[jj] = gj
                    u[jj] = uj
                    cnt[jj] = k
                    if k == n_s:
                        live[jj] = 0
                    elif k > k0:
                        sp_j[n_sp] = jj
                        sp_g[n_sp] = gj
                        sp_u[n_sp] = uj
                        sp_q[n_sp] = q_sp
                        n_sp += 1
        for jj in range(nj):
            out_c[b, j0 + jj] = cnt[jj]


def _margin(dt: np.dtype, t_max: float, tau: float) -> float:
    """Relative slack of the forward pre-test: rounding of y and of t = t_r + tau ln y."""
    eps = float(np.finfo(dt).eps)
    return min(0.25, 64.0 * eps * (1.0 + abs(t_max) / tau))


def below(x: float, dt: np.dtype) -> float:
    """The largest ``dt`` value <= x, as a float: spikes accepted by ``t <= below(T_sim)`` in
    float64 still satisfy t <= T_sim once stored in ``dt``."""
    with np.errstate(over="ignore"):  # beyond the dtype's range: +inf, then its max
        v = dt.type(x)
    if float(v) > x:
        v = np.nextafter(v, dt.type(-np.inf))
    return float(v)


def forward_constants(dt, tau_s, theta, reset, t_max) -> tuple:
    """The forward's constants, shared with engine.gpu so both backends round alike:
    ``(tau, c, 4c, theta, theta - reset)`` in ``dt``, ``below(t_max)`` as float64, then the
    pre-test bounds ``(lo, hi)`` in ``dt``."""
    dt = np.dtype(dt)
    tau = 2.0 * float(tau_s)  # tau = 2 tau_s (method.md §1)
    c = float(theta) / tau
    m = _margin(dt, t_max, tau)
    consts = (tau, c, 4.0 * c, theta, float(theta) - float(reset))
    return (*(dt.type(v) for v in consts), below(t_max, dt), dt.type(1.0 - m), dt.type(1.0 + m))


def _check_common(pre_times, pre_counts, W, group):
    if W.ndim != 3:
        raise ValueError(f"W must have shape [G, n_post, n_pre], got {W.shape}")
    if pre_times.ndim != 3 or pre_times.shape[1] != W.shape[2]:
        raise ValueError(
            f"pre_times has shape {pre_times.shape}, expected [B, {W.shape[2]}, K] to match W"
        )
    if pre_counts.shape != pre_times.shape[:2]:
        raise ValueError(f"pre_counts has shape {pre_counts.shape}, expected {pre_times.shape[:2]}")
    if group.shape != (pre_times.shape[0],):
        raise ValueError(f"group must have shape ({pre_times.shape[0]},), got {group.shape}")
    if group.size and (group.min() < 0 or group.max() >= W.shape[0]):
        raise ValueError(f"group values must lie in [0, {W.shape[0]})")


def _positive(name: str, value) -> float:
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _prep(pre_times, pre_counts, W, group):
    check_counts(pre_times, pre_counts, "pre_")  # before the int32 cast, which would wrap
    W = np.ascontiguousarray(W)
    if W.dtype not in (np.float32, np.float64):
        raise TypeError(f"W must be float32 or float64, got {W.dtype}")
    dt = W.dtype
    pre_times = np.ascontiguousarray(pre_times, dtype=dt)
    pre_counts = np.ascontiguousarray(pre_counts, dtype=np.int32)
    group = np.ascontiguousarray(group, dtype=np.int32)
    _check_common(pre_times, pre_counts, W, group)
    return pre_times, pre_counts, W, group, dt


def dense_forward(pre_times, pre_counts, W, group, tau_s, theta, reset, n_max, t_max, events=None):
    """Exact spike times of a dense layer (method.md §4).

    Returns ``(times [B, No, n_max] +inf padded, counts [B, No] int32, udot [B, No, n_max])``
    where ``udot`` is the membrane slope at each spike (0 in empty slots). ``events``
    (CPU only, optional): ``merge_inputs(pre_times, pre_counts, 2 tau_s)``, to share the merge
    with ``dense_backward``.
    """
    pre_times, pre_counts, W, group, dt = _prep(pre_times, pre_counts, W, group)
    tau = 2.0 * _positive("tau_s", tau_s)  # tau = 2 tau_s (method.md §1)
    theta, reset, t_max = (
        _positive(k, v) for k, v in (("theta", theta), ("reset", reset), ("t_max", t_max))
    )
    if int(n_max) != n_max or n_max < 1:
        raise ValueError(f"n_max must be an integer >= 1, got {n_max}")
    n_b, n_o = pre_times.shape[0], W.shape[1]
    out_t = np.full((n_b, n_o, int(n_max)), np.inf, dtype=dt)
    out_c = np.zeros((n_b, n_o), dtype=np.int32)
    out_ud = np.zeros((n_b, n_o, int(n_max)), dtype=dt)
    ev_t, ev_i, _, ev_q, n_ev, _ = _events(events, pre_times, pre_counts, tau)
    consts = forward_constants(dt, tau_s, theta, reset, t_max)
    wt = transpose(W)  # [G, Ni, No]: neurons contiguous
    _forward_kernel(ev_t, ev_i, ev_q, n_ev, wt, group, consts, FORWARD_BLOCK, out_t, out_c, out_ud)
    return out_t, out_c, out_ud


# --------------------------------------------------------------------------------------------
# Backward (method.md §6.5): delta (§6.2), weight gradient (§6.3), phi_pre (§6.4).
# --------------------------------------------------------------------------------------------
@njit(**_JIT)
def _delta_kernel(post_t, post_c, udot, phi, inv_tau, reset_tau, delta):
    """delta_k = phi_k + (reset/tau) * beta_hat_k, overflow-free recursion (method.md §6.2).

    beta_hat_k = e^{-(t_{k+1}-t_k)/tau} (beta_hat_{k+1} + r_{k+1}) with r_k = delta_k / u_dot_k
    (paper Eq. 20-24); mu_k = alpha_k beta_k = (reset/tau) beta_hat_k.
    """
    n_b, n_o, _ = post_t.shape
    for b in prange(n_b):
        for j in range(n_o):
            n = post_c[b, j]
            bh = inv_tau - inv_tau
            r_next = bh
            for k in range(n - 1, -1, -1):
                if k < n - 1:
                    bh = math.exp(-(post_t[b, j, k + 1] - post_t[b, j, k]) * inv_tau) * (
                        bh + r_next
                    )
                d = phi[b, j, k] + reset_tau * bh
                delta[b, j, k] = d
                r_next = d / udot[b, j, k]


@njit(nogil=True, cache=True, fastmath=False)
def _n_before(ev_t, b, lo, hi, t):
    """Number of inputs ``ev_t[b, :hi]`` strictly before ``t``, knowing it is >= ``lo``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if ev_t[b, mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**_JIT)
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
                pos = _n_before(ev_t, b, pos, m, post_t[b, j, k])  # the spikes are sorted
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


def bucket_spikes(ev: Events, post_t, post_c):
    """``(head [B, M+2], item [B, max spikes], top [B])`` of :func:`_bucket_kernel`."""
    n_b = post_t.shape[0]
    n_max = max(int(post_c.sum(axis=1).max()) if n_b else 0, 1)
    head = np.zeros((n_b, ev.t.shape[1] + 2), dtype=np.int64)
    item = np.zeros((n_b, n_max), dtype=np.int64)
    top = np.zeros(n_b, dtype=np.int64)
    _bucket_kernel(ev.t, ev.n, post_t, post_c, head, item, top)
    return head, item, top


@njit(nogil=True, cache=True, fastmath=False)
def _acc_decay(row, s1, s2, tau, q, qq):
    """row -= tau (S1 - S2) = sum_k r_k eps(t_k - t_n); then S1 *= q, S2 *= q^2 (SIMD loop)."""
    for jj in range(s1.shape[0]):
        a = s1[jj]
        c = s2[jj]
        row[jj] -= tau * (a - c)
        s1[jj] = a * q
        s2[jj] = c * qq


@njit(nogil=True, cache=True, fastmath=False)
def _dot_decay(w, s1, s2, q, qq):
    """sum_j w_j (2 S2_j - S1_j) with 4 fixed partial sums (deterministic); then decay S."""
    n = s1.shape[0]
    zero = q - q
    a0 = zero
    a1 = zero
    a2 = zero
    a3 = zero
    n4 = n - n % 4
    for j in range(0, n4, 4):
        a0 += w[j] * (s2[j] + s2[j] - s1[j])
        a1 += w[j + 1] * (s2[j + 1] + s2[j + 1] - s1[j + 1])
        a2 += w[j + 2] * (s2[j + 2] + s2[j + 2] - s1[j + 2])
        a3 += w[j + 3] * (s2[j + 3] + s2[j + 3] - s1[j + 3])
    for j in range(n4, n):
        a0 += w[j] * (s2[j] + s2[j] - s1[j])
    for j in range(n):
        s1[j] *= q
        s2[j] *= qq
    return (a0 + a1) + (a2 + a3)


@njit(nogil=True, cache=True, fastmath=False, inline="always")
def _add_spikes(b, n, t_n, j0, nj, head, item, post_t, delta, udot, inv_tau, s1, s2):
    """Add the post spikes of neurons j0 .. j0+nj-1 in (t_n, t_{n+1}] to S1, S2 at t_n."""
    n_s = post_t.shape[2]
    for it in range(head[b, n + 1], head[b, n + 2]):
        j = item[b, it] // n_s
        jj = j - j0
        if jj < 0 or jj >= nj:
            continue
        k = item[b, it] - j * n_s
        a = math.exp(-(post_t[b, j, k] - t_n) * inv_tau)
        rk = delta[b, j, k] / udot[b, j, k]  # r_k = delta_k / u_dot_k
        s1[jj] += rk * a
        s2[jj] += rk * (a * a)


@njit(**_JIT)
def _grad_kernel(
    ev_t,
    ev_i,
    ev_q,
    head,
    item,
    top,
    post_t,
    delta,
    udot,
    order,
    gstart,
    inv_tau,
    n_chunk,
    block,
    parts,
):
    """dL/dw_ji = -sum_k r_k sum_{z: t_iz < t_k} eps(t_k - t_iz)  (paper Eq. 12-13, §6.3).

    Per (group, chunk of its samples, block of post neurons) and sample, sweep the inputs
    backwards keeping per neuron S1 = sum_{k: t_k > t_n} r_k e^{-(t_k - t_n)/tau} and S2 (the
    same with 2/tau), decayed from t_n to t_{n-1} by the shared factor e^{-(t_n - t_{n-1})/tau};
    then sum_k r_k eps(t_k - t_n) = tau (S1 - S2), every exponent <= 0.
    ``parts`` is [n_chunk, G, Ni, No]; the caller sums the chunks in order. The post spikes come
    bucketed by ``_bucket_kernel`` (``head``, ``item``, ``top``).
    """
    _, n_g, _, n_o = parts.shape
    tau = (inv_tau / inv_tau) / inv_tau
    n_blk = (n_o + block - 1) // block
    for p in prange(n_g * n_chunk * n_blk):
        gi = p // (n_chunk * n_blk)
        rest = p - gi * n_chunk * n_blk
        ch = rest // n_blk
        j0 = (rest - ch * n_blk) * block
        nj = min(block, n_o - j0)
        size = gstart[gi + 1] - gstart[gi]
        o_lo = gstart[gi] + (size * ch) // n_chunk
        o_hi = gstart[gi] + (size * (ch + 1)) // n_chunk
        if o_hi == o_lo:
            continue
        s1 = np.zeros(nj, dtype=parts.dtype)
        s2 = np.zeros(nj, dtype=parts.dtype)
        for o in range(o_lo, o_hi):
            b = order[o]
            if top[b] == 0:
                continue
            s1[:] = 0
            s2[:] = 0
            for n in range(top[b] - 1, -1, -1):
                t_n = ev_t[b, n]
                _add_spikes(b, n, t_n, j0, nj, head, item, post_t, delta, udot, inv_tau, s1, s2)
                q = ev_q[b, n]
                _acc_decay(parts[ch, gi, ev_i[b, n], j0 : j0 + nj], s1, s2, tau, q, q * q)


@njit(**_JIT)
def _phi_pre_kernel(
    ev_t, ev_i, ev_s, ev_q, head, item, top, post_t, delta, udot, wt, group, inv_tau, phi_pre
):
    """phi_iz = sum_j w_ji sum_{k: t_jk > t_iz} r_jk eps'(t_jk - t_iz)  (paper Eq. 18-19, §6.4).

    eps'(s) = 2e^{-2s/tau} - e^{-s/tau}, so the inner sum is 2 S2 - S1 with the suffix sums of
    ``_grad_kernel``. Parallel over samples: each sample owns its rows of ``phi_pre``.
    ``wt`` is W transposed, [G, Ni, No].
    """
    n_b = ev_t.shape[0]
    n_o = wt.shape[2]
    for b in prange(n_b):
        gi = group[b]
        s1 = np.zeros(n_o, dtype=wt.dtype)
        s2 = np.zeros(n_o, dtype=wt.dtype)
        for n in range(top[b] - 1, -1, -1):
            t_n = ev_t[b, n]
            _add_spikes(b, n, t_n, 0, n_o, head, item, post_t, delta, udot, inv_tau, s1, s2)
            q = ev_q[b, n]
            i = ev_i[b, n]
            phi_pre[b, i, ev_s[b, n]] = _dot_decay(wt[gi, i], s1, s2, q, q * q)


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
    """BATS backward of a dense layer (method.md §6.5).

    ``phi`` [B, No, S] is the inter-neuron error dL/dt of each post spike (never mutated; empty
    slots ignored). Returns ``(delta [B, No, S], grad [G, No, Ni] summed over the samples of each
    group, phi_pre [B, Ni, Ki] or None)``. ``events``: as in :func:`dense_forward`.
    """
    pre_times, pre_counts, W, group, dt = _prep(pre_times, pre_counts, W, group)
    n_b, n_o = pre_times.shape[0], W.shape[1]
    check_counts(post_times, post_counts, "post_")
    post_times = np.ascontiguousarray(post_times, dtype=dt)
    post_counts = np.ascontiguousarray(post_counts, dtype=np.int32)
    udot = np.ascontiguousarray(udot, dtype=dt)
    phi = np.ascontiguousarray(phi, dtype=dt)
    if post_times.ndim != 3 or post_times.shape[:2] != (n_b, n_o):
        raise ValueError(f"post_times has shape {post_times.shape}, expected [{n_b}, {n_o}, S]")
    if post_counts.shape != (n_b, n_o):
        raise ValueError(f"post_counts has shape {post_counts.shape}, expected {(n_b, n_o)}")
    if udot.shape != post_times.shape:
        raise ValueError(f"udot has shape {udot.shape}, expected {post_times.shape}")
    if phi.shape != post_times.shape:
        raise ValueError(f"phi has shape {phi.shape}, expected {post_times.shape}")
    tau = 2.0 * _positive("tau_s", tau_s)
    reset = _positive("reset", reset)
    inv_tau = dt.type(1.0 / tau)
    delta = np.zeros_like(post_times)
    _delta_kernel(post_times, post_counts, udot, phi, inv_tau, dt.type(float(reset) / tau), delta)

    ev = _events(events, pre_times, pre_counts, tau)
    head, item, top = bucket_spikes(ev, post_times, post_counts)
    n_g = W.shape[0]
    order = np.argsort(group, kind="stable").astype(np.int64)
    gstart = np.searchsorted(group[order], np.arange(n_g + 1)).astype(np.int64)
    # chunks of samples add parallelism when a layer has few neurons; a function of the shapes
    # only, so results do not depend on the number of threads
    n_chunk = 1 if (n_o >= 128 or n_g >= 8) else int(min(8, np.diff(gstart).max(initial=1)))
    parts = np.zeros((n_chunk, n_g, W.shape[2], n_o), dtype=dt)
    block = max(16, -(-n_o // (4 * max(1, numba.get_num_threads()))))
    _grad_kernel(
        ev.t,
        ev.i,
        ev.q,
        head,
        item,
        top,
        post_times,
        delta,
        udot,
        order,
        gstart,
        inv_tau,
        n_chunk,
        block,
        parts,
    )
    grad_t = parts[0]
    for ch in range(1, n_chunk):
        grad_t += parts[ch]
    grad = transpose(grad_t)

    phi_pre = None
    if need_pre:
        phi_pre = np.zeros_like(pre_times)
        wt = transpose(W)
        _phi_pre_kernel(
            ev.t,
            ev.i,
            ev.s,
            ev.q,
            head,
            item,
            top,
            post_times,
            delta,
            udot,
            wt,
            group,
            inv_tau,
            phi_pre,
        )
    return delta, grad, phi_pre
