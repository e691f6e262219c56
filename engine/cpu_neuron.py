"""The LIF neuron core on the CPU, shared by every layer type (docs/forward.md, docs/backward.md).

A layer type decides which input events reach a neuron and with which weight row; everything
here depends only on a neuron's time-sorted input list: the closed-form spike time with the stop
conditions (E1)-(E7), the event loop over a block of neurons that share one input list, the α·β
recursion of the backward pass and the suffix sums of r_k ε(t_k - t_n) that both the weight
gradient and the errors to presynaptic spikes are made of. engine/cuda/dense.cuh does the same
arithmetic, operation by operation.

Precision: the state (g, u) is carried in the re-centred form of docs/forward.md §4 (every exponent
<= 0) in the arrays' dtype; each neuron's last event time t_r is float64, and a candidate that
passes the pre-test is solved in float64 from the dtype's state (``next_spikes``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from .cpu_merge import JIT_PARALLEL, JIT_SERIAL

JIT_INLINE = dict(JIT_SERIAL, inline="always")


class NeuronConstants(NamedTuple):
    """The forward's constants: ``tau``, ``c = theta/tau``, ``four_c``, ``theta``,
    ``u_reset = theta - reset`` in the dtype, ``t_max`` (float64, rounded down to the dtype) and
    the pre-test bounds ``lo``, ``hi`` (dtype) that widen (1, 1] by the rounding of y and t."""

    tau: np.floating
    c: np.floating
    four_c: np.floating
    theta: np.floating
    u_reset: np.floating
    t_max: float
    lo: np.floating
    hi: np.floating


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


def forward_constants(dt, tau_s, theta, reset, t_max) -> NeuronConstants:
    """The forward's constants, shared with engine.gpu so both backends round alike."""
    dt = np.dtype(dt)
    tau = 2.0 * float(tau_s)  # tau = 2 tau_s (docs/model.md §2)
    c = float(theta) / tau
    m = _margin(dt, t_max, tau)
    consts = (tau, c, 4.0 * c, theta, float(theta) - float(reset))
    return NeuronConstants(
        *(dt.type(v) for v in consts), below(t_max, dt), dt.type(1.0 - m), dt.type(1.0 + m)
    )


# --------------------------------------------------------------------------------------------
# Forward: spike times (docs/forward.md §5) in the re-centred state (g, u) at t_r
# (docs/forward.md §4).
# --------------------------------------------------------------------------------------------
@njit(**JIT_INLINE)
def may_spike_before_next(g, u, qn, inv_tau, four_c, lo, hi):
    """Conservative pre-test of the closed form (paper Eq. 9-10): the upward root
    y = e^{(t - t_r)/tau} = 2A'/(B' + x') may satisfy y > 1 (E3, E4) and y qn <= 1 (E6), with
    A' = g, B' = g + u/tau; ``lo``/``hi`` widen the bounds by rounding."""
    zero = inv_tau - inv_tau
    bp = g + u * inv_tau  # B' = g + u/tau, A' = g   (docs/forward.md §4)
    d = bp * bp - four_c * g  # D = B'^2 - 4 A' c   (paper Eq. 9)
    den = bp + math.sqrt(d if d > zero else zero)
    g2 = g + g
    return (d >= zero) & (den > zero) & (g2 > lo * den) & (g2 * qn <= hi * den)


@njit(**JIT_INLINE)
def next_spikes(b, j, t_r, nxt, qn, g, u, k, consts, out_t, out_ud):
    """Spikes of one neuron in (t_r, nxt] from the state (g, u) at t_r (docs/forward.md §5).

    Accept-only-if tests (E1)-(E7); each spike stores t_k and u_dot_k = g(t_k) - c
    (docs/forward.md §3, §7). ``qn = e^{-(nxt - t_r)/tau}`` is the decay the next input's advance
    will use. Returns ``(g, u, k, qn)`` with ``qn`` for the last spike.

    Precision: the state (g, u) and the pre-test are in the arrays' dtype, bit-identical to
    ``advance_block``; a candidate that passes it (about one per spike) is solved in float64
    from that state, with the dtype's constants: D = B'^2 - 4A'c cancels near a tangency
    (docs/implementation.md §1), so the time is as exact as the state, not as the dtype's root.

    Rounding consistency (docs/forward.md §6.4: no interval starts above threshold): a candidate
    outside (t_r, nxt] is rejected only if the advance to nxt, computed exactly as the next input
    will compute it, leaves u < theta. Otherwise the crossing lies in (t_r, nxt] up to rounding, and
    its time is clamped into the interval: to nxt (E6 failed by rounding) or to t_r (E4 failed:
    y rounded to <= 1). Rejecting it would start the next interval at u >= theta, where the
    upward root lies in the past (y <= 1), and the neuron would lose this and every later
    spike. A spike clamped to nxt coincides with that input, which is then not part of its A
    and B (docs/forward.md §6.1): consistent with the backward's strict comparisons
    (docs/backward.md §4, §5). One clamped to t_r follows the input at t_r within rounding; the
    strict comparisons then drop that input's w eps'(0+)/u_dot = w/u_dot from phi_pre (the one-sided
    derivative at the kink, docs/backward.md §5), while the weight gradient is exact as eps(0) = 0.
    """
    tau, c, four_c, theta, u_reset, t_max, lo, hi = consts
    one = tau / tau
    inv_tau = one / tau
    tau_d = np.float64(tau)  # the dtype's constants, in float64 for the root
    inv_tau_d = 1.0 / tau_d
    n_s = out_t.shape[2]
    while k < n_s:  # (E7) buffer full: no later spike
        if not may_spike_before_next(g, u, qn, inv_tau, four_c, lo, hi):
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
        out_ud[b, j, k] = gd - np.float64(c)  # u_dot_k = g(t_k) - theta/tau   (docs/forward.md §3)
        g = type(tau)(gd)
        u = u_reset  # u <- theta - reset
        t_r = t
        k += 1
        qn = math.exp(type(tau)(t_r - nxt) * inv_tau)  # 0 when nxt = +inf
    return g, u, k, qn


@njit(**JIT_INLINE)
def advance_block(u, g, w, flag, q, qq, consts, qn):
    """Advance the block's (g, u) from t_{n-1} to t_n, add the input, flag candidates (SIMD loop).

    docs/forward.md §4: u <- u q + tau g (q - q^2), g <- g q^2 + w. The flag is
    ``may_spike_before_next``; a neuron whose buffer is full has the state NaN, which stays NaN
    and fails every comparison of the pre-test, so it is never flagged. Returns whether any
    neuron is flagged (an OR, not a count: a widening integer sum keeps the loop from
    vectorising well). Inlined into the event loop, where it runs once per input.
    """
    tau, _, four_c, _, _, _, lo, hi = consts
    inv_tau = (tau / tau) / tau
    any_flag = False
    for jj in range(u.shape[0]):
        uj = u[jj] * q + tau * g[jj] * (q - qq)  # docs/forward.md §4 advance
        gj = g[jj] * qq + w[jj]  # input of weight w
        u[jj] = uj
        g[jj] = gj
        f = may_spike_before_next(gj, uj, qn, inv_tau, four_c, lo, hi)
        flag[jj] = f
        any_flag |= f
    return any_flag


@njit(**JIT_INLINE)
def simulate_block(
    ev_t, ev_q, ev_row, m, w_rows, c0, nj, n_out, consts, b, j0, out_t, out_c, out_ud
):
    """The event loop of docs/forward.md §5 for ``nj`` neurons that share one input list
    (docs/forward.md §4).

    Inputs ``ev_t[:m]`` (sorted), their decays ``ev_q`` and weight rows: input n reaches neuron
    jj with weight ``w_rows[ev_row[n], c0 + jj]``; the neuron's outputs go to
    ``out_*[b, j0 + jj]``. For input n, one loop over the block (SIMD-friendly: the rows are
    contiguous over neurons) advances (g, u) from t_{n-1} to t_n, adds the weight and applies the
    conservative pre-test. Neurons that spiked since t_{n-1} are then redone from their last
    spike. Only flagged neurons run the exact accept-only-if tests (``next_spikes``). The
    arithmetic per neuron is that of a plain per-neuron loop (engine/cuda/dense.cuh), so results
    do not depend on how neurons are grouped into blocks. Every slot of the first ``n_out``
    neurons' outputs is written: +inf times and zero slopes past each neuron's count. Neurons
    ``n_out .. nj-1`` fill the SIMD loop's last step (``padded_rows``): with zero weights their
    state stays (0, 0), which fails the pre-test (B' + sqrt(D) = 0), so they never spike and have
    no outputs.
    """
    tau, _, four_c, _, _, t_max, lo, hi = consts
    zero = tau - tau
    one = tau / tau
    inv_tau = one / tau
    n_s = out_t.shape[2]
    nw = (nj + 7) // 8
    g = np.zeros(nj, dtype=w_rows.dtype)  # A' = g(t_r)
    u = np.zeros(nj, dtype=w_rows.dtype)  # u(t_r)
    flag = np.zeros(8 * nw, dtype=np.uint8)
    words = flag.view(np.uint64)
    cnt = np.zeros(nj, dtype=np.int32)
    # neurons that spiked in the last interval: index, state at their last spike and the decay
    # from it to the next input
    sp_j = np.empty(nj, dtype=np.int64)
    sp_g = np.empty(nj, dtype=w_rows.dtype)
    sp_u = np.empty(nj, dtype=w_rows.dtype)
    sp_q = np.empty(nj, dtype=w_rows.dtype)
    n_sp = 0
    out_t[b, j0 : j0 + n_out] = np.inf
    out_ud[b, j0 : j0 + n_out] = 0
    for n in range(m):
        t_n = ev_t[n]
        if t_n > t_max:  # docs/forward.md §6.6: later inputs can only give rejected candidates
            break
        q = ev_q[n]  # e^{-(t_n - t_{n-1})/tau}
        qq = q * q  # e^{-(t_n - t_{n-1})/tau_s}
        i = ev_row[n]
        if n + 1 < m:
            nxt = ev_t[n + 1]
            qn = ev_q[n + 1]
        else:
            nxt = np.inf
            qn = zero
        any_flag = advance_block(u, g, w_rows[i, c0 : c0 + nj], flag, q, qq, consts, qn)
        for a in range(n_sp):  # redo the neurons that spiked since t_{n-1}
            jj = sp_j[a]
            qj = sp_q[a]  # e^{-(t_n - t_k)/tau}, computed by next_spikes
            qqj = qj * qj
            uj = sp_u[a] * qj + tau * sp_g[a] * (qj - qqj)
            gj = sp_g[a] * qqj + w_rows[i, c0 + jj]
            u[jj] = uj
            g[jj] = gj
            f = may_spike_before_next(gj, uj, qn, inv_tau, four_c, lo, hi)
            flag[jj] = f
            any_flag |= f  # a flag cleared here leaves any_flag set: the scan below skips it
        n_sp = 0
        if not any_flag:
            continue
        for w8 in range(nw):
            if words[w8] == 0:
                continue
            for jj in range(8 * w8, min(8 * w8 + 8, nj)):
                if flag[jj] == 0:
                    continue
                k0 = cnt[jj]
                gj, uj, k, q_sp = next_spikes(
                    b, j0 + jj, np.float64(t_n), nxt, qn, g[jj], u[jj], k0, consts, out_t, out_ud
                )
                g[jj] = gj
                u[jj] = uj
                cnt[jj] = k
                if k == n_s:  # buffer full (E7): NaN state, never flagged again
                    g[jj] = np.nan
                    u[jj] = np.nan
                elif k > k0:
                    sp_j[n_sp] = jj
                    sp_g[n_sp] = gj
                    sp_u[n_sp] = uj
                    sp_q[n_sp] = q_sp
                    n_sp += 1
    for jj in range(n_out):
        out_c[b, j0 + jj] = cnt[jj]


# --------------------------------------------------------------------------------------------
# Backward (docs/backward.md): the α·β recursion and the suffix sums of r_k ε(t_k - t_n).
# --------------------------------------------------------------------------------------------
@njit(**JIT_PARALLEL)
def total_errors_kernel(post_t, post_c, udot, phi, inv_tau, reset_tau, delta):
    """delta_k = phi_k + (reset/tau) * beta_hat_k, the α·β recursion (paper Eq. 20-24,
    docs/backward.md §3).

    beta_hat_k = e^{-(t_{k+1}-t_k)/tau} (beta_hat_{k+1} + r_{k+1}) with r_k = delta_k / u_dot_k,
    overflow-free; mu_k = alpha_k beta_k = (reset/tau) beta_hat_k.
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
            delta[b, j, n:] = 0  # empty slots


def total_errors(post_t, post_c, udot, phi, tau, reset):
    """δ of every spike (a new array) from φ: :func:`total_errors_kernel`."""
    dt = post_t.dtype
    delta = np.empty_like(post_t)  # every element written
    total_errors_kernel(
        post_t, post_c, udot, phi, dt.type(1.0 / tau), dt.type(float(reset) / tau), delta
    )
    return delta


@njit(**JIT_INLINE)
def inputs_before(ev_t, lo, hi, t):
    """Number of inputs ``ev_t[:hi]`` strictly before ``t``, knowing it is >= ``lo``."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if ev_t[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**JIT_INLINE)
def add_later_spikes(lo, hi, item, n_s, t_n, j0, nj, post_t, delta, udot, b, inv_tau, s1, s2):
    """Add the post spikes ``item[lo:hi]`` (codes j S + k) of neurons j0 .. j0+nj-1 to the
    suffix sums at t_n: S1 += r_k e^{-(t_k - t_n)/tau}, S2 += r_k e^{-2(t_k - t_n)/tau}."""
    for it in range(lo, hi):
        j = item[it] // n_s
        jj = j - j0
        if jj < 0 or jj >= nj:
            continue
        k = item[it] - j * n_s
        a = math.exp(-(post_t[b, j, k] - t_n) * inv_tau)
        rk = delta[b, j, k] / udot[b, j, k]  # r_k = delta_k / u_dot_k
        s1[jj] += rk * a
        s2[jj] += rk * (a * a)


@njit(**JIT_INLINE)
def accumulate_weight_gradient(row, s1, s2, tau, q, qq):
    """row -= tau (S1 - S2) = sum_k r_k eps(t_k - t_n) (paper Eq. 12-13, docs/backward.md §4); then
    decay the sums to the previous input: S1 *= q, S2 *= q^2 (SIMD loop)."""
    for jj in range(s1.shape[0]):
        a = s1[jj]
        c = s2[jj]
        row[jj] -= tau * (a - c)
        s1[jj] = a * q
        s2[jj] = c * qq


@njit(**JIT_INLINE)
def presynaptic_error_sum(prod, lanes):
    """sum_j prod_j, with prod_j = w_j (2 S2_j - S1_j) = w_j sum_k r_jk eps'(t_jk - t_n) (paper
    Eq. 18-19, docs/backward.md §5), eps'(s) = 2e^{-2s/tau} - e^{-s/tau}.

    A fixed order (deterministic): 4 partial sums, neuron j into lane j mod 4 in increasing j,
    the neurons past the last multiple of 4 into lane 0, then (lane 0 + lane 1) + (lane 2 +
    lane 3). The lanes are added as one small vector (``lanes`` [4], scratch), which SIMD
    executes without reassociating anything (no fastmath)."""
    n = prod.shape[0]
    n4 = n - n % 4
    for lane in range(4):
        lanes[lane] = 0
    for j in range(0, n4, 4):
        for lane in range(4):
            lanes[lane] += prod[j + lane]
    a0 = lanes[0]
    for j in range(n4, n):
        a0 += prod[j]
    return (a0 + lanes[1]) + (lanes[2] + lanes[3])


@njit(**JIT_INLINE)
def presynaptic_error(w, s1, s2, q, qq, prod, lanes):
    """:func:`presynaptic_error_sum` of ``prod_j = w_j (2 S2_j - S1_j)``, formed in one SIMD pass
    that also decays the sums to the previous input: S1 *= q, S2 *= q^2. ``prod`` [n] and
    ``lanes`` [4] are scratch."""
    for j in range(s1.shape[0]):
        a = s1[j]
        c = s2[j]
        prod[j] = w[j] * (c + c - a)
        s1[j] = a * q
        s2[j] = c * qq
    return presynaptic_error_sum(prod, lanes)


@njit(**JIT_INLINE)
def gradient_and_presynaptic_error(w, row, s1, s2, tau, q, qq, prod, lanes):
    """:func:`accumulate_weight_gradient` on ``row`` and :func:`presynaptic_error` in one pass
    over the neurons (SIMD): row -= tau (S1 - S2), the error sum_j w_j (2 S2_j - S1_j) returned,
    S1, S2 decayed. ``prod`` [n] and ``lanes`` [4] are scratch."""
    for j in range(s1.shape[0]):
        a = s1[j]
        c = s2[j]
        prod[j] = w[j] * (c + c - a)
        row[j] -= tau * (a - c)
        s1[j] = a * q
        s2[j] = c * qq
    return presynaptic_error_sum(prod, lanes)
