"""CPU backend: Numba kernels of the exact event loop and the BATS backward pass.

Every kernel runs in the dtype of its arrays (float32 or float64): the wrappers cast the scalar
constants to that dtype so Numba specialises the whole kernel. The state is carried in the
re-centred form of method.md §3.4, so every exponent is <= 0 and nothing overflows.

Shapes (method.md §0): pre/post times ``[B, N, S]`` (+inf padded), counts ``[B, N]`` int32,
weights ``W[G, No, Ni]`` with ``group[b]`` in ``[0, G)`` selecting the weights of sample ``b``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

_JIT = dict(parallel=True, nogil=True, cache=True, fastmath=False)


# --------------------------------------------------------------------------------------------
# Input merge: one sorted event list per sample (method.md §4, stable key (t, i, slot)).
# --------------------------------------------------------------------------------------------
@njit(**_JIT)
def _merge_kernel(pre_times, pre_counts, n_ev, inv_tau, ev_t, ev_i, ev_s, ev_q):
    """Merge the pre trains of each sample into ``ev_*[b, :n_ev[b]]`` sorted by (t, i, slot).

    ``ev_q[b, n] = exp(-(t_n - t_{n-1})/tau)`` (1 for n = 0) is the decay between consecutive
    inputs, shared by every post neuron of the layer (method.md §3.4, advance step).
    """
    n_b, n_i = pre_counts.shape
    for b in prange(n_b):
        m = n_ev[b]
        if m == 0:
            continue
        tt = np.empty(m, dtype=pre_times.dtype)
        ti = np.empty(m, dtype=np.int32)
        ts = np.empty(m, dtype=np.int32)
        p = 0
        for i in range(n_i):
            for z in range(pre_counts[b, i]):
                tt[p] = pre_times[b, i, z]
                ti[p] = i
                ts[p] = z
                p += 1
        # collected in (i, slot) order, so a stable sort on t gives the key (t, i, slot)
        order = np.argsort(tt, kind="mergesort")
        prev = tt[order[0]]
        for n in range(m):
            o = order[n]
            t = tt[o]
            ev_t[b, n] = t
            ev_i[b, n] = ti[o]
            ev_s[b, n] = ts[o]
            ev_q[b, n] = math.exp(-(t - prev) * inv_tau)
            prev = t


def merge_inputs(pre_times: np.ndarray, pre_counts: np.ndarray, tau):
    """Sorted events of each sample: ``(ev_t, ev_i, ev_s, ev_q, n_ev)``, each ``[B, M]``/``[B]``."""
    dt = pre_times.dtype
    n_ev = pre_counts.sum(axis=1, dtype=np.int64).astype(np.int32)
    m = max(int(n_ev.max()) if n_ev.size else 0, 1)
    b = pre_times.shape[0]
    ev_t = np.full((b, m), np.inf, dtype=dt)
    ev_i = np.zeros((b, m), dtype=np.int32)
    ev_s = np.zeros((b, m), dtype=np.int32)
    ev_q = np.ones((b, m), dtype=dt)
    _merge_kernel(pre_times, pre_counts, n_ev, dt.type(1.0 / tau), ev_t, ev_i, ev_s, ev_q)
    return ev_t, ev_i, ev_s, ev_q, n_ev


# --------------------------------------------------------------------------------------------
# Forward: the exact event loop (method.md §4), re-centred state (g, u) at t_r (§3.4).
# --------------------------------------------------------------------------------------------
@njit(**_JIT)
def _forward_kernel(
    ev_t, ev_i, ev_q, n_ev, W, group, tau, c, four_c, u_reset, t_max, out_t, out_c, out_ud
):
    n_b = ev_t.shape[0]
    n_o = W.shape[1]
    n_s = out_t.shape[2]
    zero = tau - tau
    inv_tau = (tau / tau) / tau
    for p in prange(n_b * n_o):
        j = p // n_b  # consecutive p share W[., j, :] (cache friendly)
        b = p - j * n_b
        gi = group[b]
        m = n_ev[b]
        g = zero  # A' = g(t_r)
        u = zero  # u(t_r)
        t_r = zero
        n_out = 0
        spiked = False
        for n in range(m):
            t_n = ev_t[b, n]
            if t_n > t_max:  # §4.6: later inputs can only give rejected candidates
                break
            if spiked:  # the last event was a post spike: decay from it, not from t_{n-1}
                q = math.exp(-(t_n - t_r) * inv_tau)
                spiked = False
            else:
                q = ev_q[b, n]
            qq = q * q  # e^{-(t_n - t_r)/tau_s}
            u = u * q + tau * g * (q - qq)  # §3.4 advance
            g = g * qq + W[gi, j, ev_i[b, n]]  # input of weight w at t_r
            t_r = t_n
            nxt = ev_t[b, n + 1] if n + 1 < m else np.inf
            while True:  # zero or more spikes in (t_n, next]; accept-only-if tests (E1)-(E7)
                bp = g + u * inv_tau  # B' = g + u/tau
                d = bp * bp - four_c * g  # D = B'^2 - 4 A' c   (paper Eq. 9)
                if not (d >= zero):  # (E1)
                    break
                x = math.sqrt(d)
                den = bp + x
                if not (den > zero):  # (E2)
                    break
                y = (g + g) / den  # y' = 2A'/(B' + x')   (paper Eq. 10)
                if not (y > zero):  # (E3)
                    break
                t = t_r + tau * math.log(y)
                if not (t > t_r):  # (E4) t_r is the last event
                    break
                if not (t <= t_max):  # (E5)
                    break
                if not (t <= nxt):  # (E6)
                    break
                q = math.exp(-(t - t_r) * inv_tau)
                g = g * (q * q)
                out_t[b, j, n_out] = t
                out_ud[b, j, n_out] = g - c  # u_dot_k = g(t_k) - theta/tau   (§3.3)
                u = u_reset  # u <- theta - reset
                t_r = t
                spiked = True
                n_out += 1
                if n_out == n_s:  # (E7)
                    break
            if n_out == n_s:
                break
        out_c[b, j] = n_out


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


def _prep(pre_times, pre_counts, W, group):
    W = np.ascontiguousarray(W)
    if W.dtype not in (np.float32, np.float64):
        raise TypeError(f"W must be float32 or float64, got {W.dtype}")
    dt = W.dtype
    pre_times = np.ascontiguousarray(pre_times, dtype=dt)
    pre_counts = np.ascontiguousarray(pre_counts, dtype=np.int32)
    group = np.ascontiguousarray(group, dtype=np.int32)
    _check_common(pre_times, pre_counts, W, group)
    return pre_times, pre_counts, W, group, dt


def dense_forward(pre_times, pre_counts, W, group, tau_s, theta, reset, n_max, t_max):
    """Exact spike times of a dense layer (method.md §4).

    Returns ``(times [B, No, n_max] +inf padded, counts [B, No] int32, udot [B, No, n_max])``
    where ``udot`` is the membrane slope at each spike (0 in empty slots).
    """
    pre_times, pre_counts, W, group, dt = _prep(pre_times, pre_counts, W, group)
    tau = 2.0 * float(tau_s)  # tau = 2 tau_s (method.md §1)
    c = float(theta) / tau
    n_b, n_o = pre_times.shape[0], W.shape[1]
    out_t = np.full((n_b, n_o, int(n_max)), np.inf, dtype=dt)
    out_c = np.zeros((n_b, n_o), dtype=np.int32)
    out_ud = np.zeros((n_b, n_o, int(n_max)), dtype=dt)
    ev_t, ev_i, _, ev_q, n_ev = merge_inputs(pre_times, pre_counts, tau)
    _forward_kernel(
        ev_t,
        ev_i,
        ev_q,
        n_ev,
        W,
        group,
        dt.type(tau),
        dt.type(c),
        dt.type(4.0 * c),
        dt.type(float(theta) - float(reset)),
        float(t_max),
        out_t,
        out_c,
        out_ud,
    )
    return out_t, out_c, out_ud


# --------------------------------------------------------------------------------------------
# Backward (method.md §6.5): delta (§6.2), weight gradient (§6.3), phi_pre (§6.4).
# --------------------------------------------------------------------------------------------
@njit(**_JIT)
def _delta_kernel(post_t, post_c, udot, phi, inv_tau, reset_tau, delta, r):
    """delta_k = phi_k + (reset/tau) * beta_hat_k, overflow-free recursion (method.md §6.2).

    beta_hat_k = e^{-(t_{k+1}-t_k)/tau} (beta_hat_{k+1} + delta_{k+1}/u_dot_{k+1})
    (paper Eq. 20-24); also r_k = delta_k / u_dot_k, the factor shared by §6.3 and §6.4.
    """
    n_b, n_o, _ = post_t.shape
    for p in prange(n_b * n_o):
        b = p // n_o
        j = p - b * n_o
        n = post_c[b, j]
        bh = inv_tau - inv_tau
        for k in range(n - 1, -1, -1):
            if k < n - 1:
                bh = math.exp(-(post_t[b, j, k + 1] - post_t[b, j, k]) * inv_tau) * (
                    bh + r[b, j, k + 1]
                )
            d = phi[b, j, k] + reset_tau * bh
            delta[b, j, k] = d
            r[b, j, k] = d / udot[b, j, k]


@njit(**_JIT)
def _grad_kernel(ev_t, ev_i, ev_q, n_ev, post_t, post_c, r, order, gstart, inv_tau, grad):
    """dL/dw_ji = -sum_k r_k sum_{z: t_iz < t_k} eps(t_k - t_iz)  (paper Eq. 12-13, §6.3).

    Per (group, post neuron) and sample, walk the merged inputs backwards keeping
    S1 = sum_{k: t_k > t_n} r_k e^{-(t_k - t_n)/tau} and S2 (same with 2/tau), so that
    sum_k r_k eps(t_k - t_n) = tau (S1 - S2) with every exponent <= 0; O(M + n) per neuron.
    """
    n_g, n_o, _ = grad.shape
    tau = (inv_tau / inv_tau) / inv_tau
    zero = inv_tau - inv_tau
    for p in prange(n_g * n_o):
        gi = p // n_o
        j = p - gi * n_o
        for o in range(gstart[gi], gstart[gi + 1]):
            b = order[o]
            n = post_c[b, j]
            if n == 0:
                continue
            t_last = post_t[b, j, n - 1]
            e = n_ev[b] - 1
            while e >= 0 and not (ev_t[b, e] < t_last):
                e -= 1
            s1 = zero
            s2 = zero
            kk = n - 1
            for en in range(e, -1, -1):
                t_n = ev_t[b, en]
                if en < e:
                    q = ev_q[b, en + 1]
                    s1 *= q
                    s2 *= q * q
                while kk >= 0 and post_t[b, j, kk] > t_n:  # strict: t_iz < t_k
                    a = math.exp(-(post_t[b, j, kk] - t_n) * inv_tau)
                    s1 += r[b, j, kk] * a
                    s2 += r[b, j, kk] * (a * a)
                    kk -= 1
                grad[gi, j, ev_i[b, en]] -= tau * (s1 - s2)


@njit(**_JIT)
def _phi_pre_kernel(ev_t, ev_i, ev_s, ev_q, n_ev, post_t, post_c, r, W, group, inv_tau, phi_pre):
    """phi_iz = sum_j w_ji sum_{k: t_jk > t_iz} r_jk eps'(t_jk - t_iz)  (paper Eq. 18-19, §6.4).

    eps'(s) = 2e^{-2s/tau} - e^{-s/tau}, so the inner sum is 2 S2 - S1 with the suffix sums of
    ``_grad_kernel``. Parallel over samples: each sample owns its rows of ``phi_pre``.
    """
    n_b = ev_t.shape[0]
    n_o = W.shape[1]
    zero = inv_tau - inv_tau
    for b in prange(n_b):
        gi = group[b]
        for j in range(n_o):
            n = post_c[b, j]
            if n == 0:
                continue
            t_last = post_t[b, j, n - 1]
            e = n_ev[b] - 1
            while e >= 0 and not (ev_t[b, e] < t_last):
                e -= 1
            s1 = zero
            s2 = zero
            kk = n - 1
            for en in range(e, -1, -1):
                t_n = ev_t[b, en]
                if en < e:
                    q = ev_q[b, en + 1]
                    s1 *= q
                    s2 *= q * q
                while kk >= 0 and post_t[b, j, kk] > t_n:  # strict: t_jk > t_iz
                    a = math.exp(-(post_t[b, j, kk] - t_n) * inv_tau)
                    s1 += r[b, j, kk] * a
                    s2 += r[b, j, kk] * (a * a)
                    kk -= 1
                i = ev_i[b, en]
                phi_pre[b, i, ev_s[b, en]] += W[gi, j, i] * (s2 + s2 - s1)


def dense_backward(
    pre_times, pre_counts, W, group, post_times, post_counts, udot, phi, tau_s, reset, need_pre
):
    """BATS backward of a dense layer (method.md §6.5).

    ``phi`` [B, No, S] is the inter-neuron error dL/dt of each post spike (never mutated; empty
    slots ignored). Returns ``(delta [B, No, S], grad [G, No, Ni] summed over the samples of each
    group, phi_pre [B, Ni, Ki] or None)``.
    """
    pre_times, pre_counts, W, group, dt = _prep(pre_times, pre_counts, W, group)
    n_b, n_o = pre_times.shape[0], W.shape[1]
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
    tau = 2.0 * float(tau_s)
    inv_tau = dt.type(1.0 / tau)
    delta = np.zeros_like(post_times)
    r = np.zeros_like(post_times)
    _delta_kernel(
        post_times, post_counts, udot, phi, inv_tau, dt.type(float(reset) / tau), delta, r
    )

    ev_t, ev_i, ev_s, ev_q, n_ev = merge_inputs(pre_times, pre_counts, tau)
    n_g = W.shape[0]
    order = np.argsort(group, kind="stable").astype(np.int64)
    gstart = np.searchsorted(group[order], np.arange(n_g + 1)).astype(np.int64)
    grad = np.zeros_like(W)
    _grad_kernel(ev_t, ev_i, ev_q, n_ev, post_times, post_counts, r, order, gstart, inv_tau, grad)

    phi_pre = None
    if need_pre:
        phi_pre = np.zeros_like(pre_times)
        _phi_pre_kernel(
            ev_t, ev_i, ev_s, ev_q, n_ev, post_times, post_counts, r, W, group, inv_tau, phi_pre
        )
    return delta, grad, phi_pre
