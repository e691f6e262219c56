// The LIF neuron core of the CUDA kernels, shared by every layer type (docs/forward.md §4, §5,
// docs/backward.md): the spike-time solver with its stop conditions, the α·β recursion and the
// suffix sums of the backward pass. A layer type (dense.cuh, conv.cuh) only decides which inputs
// reach a neuron.
//
// Every function is __host__ __device__: the __global__ wrappers (*.cu) call them from a
// grid-stride loop on the GPU, and the test harness (tests/engine/cuda_host_harness.cpp) loops
// them over every thread index on the CPU, compiled by g++. The arithmetic mirrors
// engine/cpu_neuron.py operation by operation (same constants, same order), so the backends
// agree to rounding.
#pragma once

#if defined(__CUDACC__)
#define BS_HD __host__ __device__ __forceinline__
#else
#include <math.h>
#define BS_HD inline
#endif

namespace bs {


typedef long long idx_t;

BS_HD float bs_exp(float x) { return expf(x); }
BS_HD double bs_exp(double x) { return exp(x); }
BS_HD float bs_log(float x) { return logf(x); }
BS_HD double bs_log(double x) { return log(x); }
BS_HD float bs_sqrt(float x) { return sqrtf(x); }
BS_HD double bs_sqrt(double x) { return sqrt(x); }

template <typename T>
BS_HD T bs_inf();
template <>
BS_HD float bs_inf<float>() {
#if defined(__CUDA_ARCH__)
    return __int_as_float(0x7f800000);
#else
    return HUGE_VALF;
#endif
}
template <>
BS_HD double bs_inf<double>() {
#if defined(__CUDA_ARCH__)
    return __longlong_as_double(0x7ff0000000000000LL);
#else
    return HUGE_VAL;
#endif
}

// Spike times of one neuron (docs/forward.md §5), shared by every layer type: the exact event loop
// over its time-sorted inputs et[0..m) (decays eq, weight w[ei[n] * w_stride]), with the
// re-centred state (g, u) at the last event t_r (docs/forward.md §4) so every exponent is <= 0, and
// accept-only-if tests (E1)-(E7) so a NaN candidate is rejected, never stored. Operation by
// operation the same as engine/cpu_neuron.py (advance_block, next_spikes; constants from
// cpu_neuron.forward_constants). Writes the spikes to ot/ou (empty slots +inf / 0), returns n.
//
// Precision. Per input, the advance of (g, u) and the pre-test run in T: in the float32 kernel
// the only FP64 on that path is widening t_n into t_r. Two scalars per thread are float64
// bookkeeping (adds and compares): the last event time t_r and a candidate t = t_r + tau ln y,
// so the float32 rounding of an absolute time (~1e-6 s at t = 10 s) neither accumulates along
// a chain of spikes nor decides (E4)-(E6). A candidate that passes the pre-test (y within
// rounding of (t_r, next]: about one per emitted spike, not one per input) is solved in float64
// from the T state with T's constants: D = B'^2 - 4A'c cancels near a tangency
// (docs/implementation.md §1), so the spike time is as exact as the state rather than as a float32
// root. On GPUs with slow FP64 this costs about one sqrt/div/log per spike.
//
// Rounding consistency (docs/forward.md §6.4: no interval may start above threshold). A candidate
// outside (t_r, next] is rejected only if the advance to `next`, computed exactly as the next input
// computes it, leaves u < theta. Otherwise the crossing lies in (t_r, next] up to rounding and
// its time is clamped into the interval: to `next` when (E6) failed by rounding, to t_r when
// (E4) did (y rounded to <= 1). Rejecting it would start the next interval at u >= theta with
// the upward root in the past, and the neuron would lose this and every later spike. A spike
// clamped to `next` coincides with that input, which is not part of its A and B
// (docs/forward.md §6.1), as the backward's strict comparisons assume; one clamped to t_r follows
// the input at t_r within rounding, and the strict comparisons drop that input's w eps'(0+)/u_dot
// from phi_pre (the one-sided derivative at the kink, docs/backward.md §5; eps(0) = 0 keeps the
// weight gradient exact). t_max is the largest T <= T_sim (cpu.below), so a stored spike never
// exceeds T_sim.
template <typename T>
BS_HD int neuron_spikes(const T* et, const int* ei, const T* eq, int m, const T* w,
                        idx_t w_stride, int n_max, T tau, T c, T four_c, T theta, T u_reset,
                        double t_max, T lo, T hi, T* ot, T* ou) {
    const T zero = tau - tau;
    const T one = tau / tau;
    const T inv_tau = one / tau;
    const double tau_d = (double)tau;  // T's constants, in float64 for the root
    const double inv_tau_d = 1.0 / tau_d;
    const T t_end = (T)t_max;  // exact: t_max is a T value, so t_n > t_end <=> t_n > t_max
    T g = zero;   // A' = g(t_r)
    T u = zero;   // u(t_r)
    T qn = one;   // e^{-(t_{n+1} - t_r)/tau}: decay from the last event to the next input
    int n_spk = 0;
    for (int n = 0; n < m && n_spk < n_max; ++n) {
        const T t_n = et[n];
        if (t_n > t_end) break;  // docs/forward.md §6.6: later inputs only give rejected candidates
        const T q = qn;
        const T qq = q * q;                    // e^{-(t_n - t_r)/tau_s}
        u = u * q + tau * g * (q - qq);        // docs/forward.md §4 advance
        g = g * qq + w[(idx_t)ei[n] * w_stride];  // input of weight w at t_r
        double t_r = (double)t_n;
        const bool last = n + 1 == m;
        const T nxt = last ? bs_inf<T>() : et[n + 1];
        qn = last ? zero : eq[n + 1];
        while (n_spk < n_max) {  // (E7); zero or more spikes in (t_n, next]
            const T bp = g + u * inv_tau;      // B' = g + u/tau, A' = g
            const T d = bp * bp - four_c * g;  // D = B'^2 - 4 A' c   (paper Eq. 9)
            const T den = bp + bs_sqrt(d > zero ? d : zero);
            const T g2 = g + g;
            // pre-test: y > lo (E3, E4 within rounding), y qn <= hi ((E6) within rounding)
            if (!(d >= zero && den > zero && g2 > lo * den && g2 * qn <= hi * den)) break;
            double gd = (double)g;
            const double bp_d = gd + (double)u * inv_tau_d;
            const double d_d = bp_d * bp_d - (double)four_c * gd;
            if (!(d_d >= 0.0)) break;  // (E1)
            const double den_d = bp_d + bs_sqrt(d_d);
            if (!(den_d > 0.0)) break;  // (E2); then y > 0 (E3) as A' = g > 0
            const double y = (gd + gd) / den_d;  // y' = 2A'/(B' + x')   (paper Eq. 10)
            double t = t_r + tau_d * bs_log(y);
            double qs;                           // e^{-(t - t_r)/tau}
            if (y > 1.0 && t <= (double)nxt) {  // (E4) y > 1 <=> t > t_r = last;  (E6)
                qs = 1.0 / y;
            } else {  // rounding consistency: u(next) as the next advance computes it
                if (!(u * qn + tau * g * (qn - qn * qn) >= theta)) break;
                if (y > 1.0) {
                    t = (double)nxt;
                    qs = (double)qn;
                } else {
                    t = t_r;
                    qs = 1.0;
                }
            }
            if (!(t <= t_max)) break;  // (E5)
            gd = gd * (qs * qs);       // g(t_k)
            ot[n_spk] = (T)t;
            ou[n_spk] = (T)(gd - (double)c);  // u_dot_k = g(t_k) - theta/tau   (docs/forward.md §3)
            g = (T)gd;
            u = u_reset;  // u <- theta - reset
            t_r = t;
            ++n_spk;
            qn = bs_exp((T)(t_r - (double)nxt) * inv_tau);  // 0 when next = +inf
        }
    }
    for (int k = n_spk; k < n_max; ++k) {  // empty slots: t = +inf, u_dot = 0 (docs/forward.md §7)
        ot[k] = bs_inf<T>();
        ou[k] = zero;
    }
    return n_spk;
}

// Delta (docs/backward.md §3), idx = b*No + j: delta_k = phi_k + (reset/tau) beta_hat_k with the
// overflow-free recursion beta_hat_k = e^{-(t_{k+1}-t_k)/tau} (beta_hat_{k+1} + r_{k+1}),
// r_k = delta_k / u_dot_k (paper Eq. 20-24). Also the suffix sums at t_k used by
// docs/backward.md §4, §5:
//   p1_k = sum_{z>=k} r_z e^{-(t_z - t_k)/tau} = beta_hat_k + r_k,
//   p2_k = sum_{z>=k} r_z e^{-2(t_z - t_k)/tau}.
// Empty slots get 0. phi is only read, never written.
template <typename T>
BS_HD void delta_thread(idx_t idx, const T* post_t, const int* post_c, const T* udot,
                        const T* phi, int n_slots, T inv_tau, T reset_tau, T* delta, T* p1,
                        T* p2) {
    const idx_t base = idx * n_slots;
    const int n = post_c[idx];
    const T zero = inv_tau - inv_tau;
    for (int k = n_slots - 1; k >= n; --k) {
        delta[base + k] = zero;
        p1[base + k] = zero;
        p2[base + k] = zero;
    }
    T bh = zero;
    T s2 = zero;
    T r_next = zero;
    for (int k = n - 1; k >= 0; --k) {
        if (k < n - 1) {
            const T q = bs_exp(-(post_t[base + k + 1] - post_t[base + k]) * inv_tau);
            bh = q * (bh + r_next);
            s2 = (q * q) * s2;
        }
        const T d = phi[base + k] + reset_tau * bh;
        const T r = d / udot[base + k];
        delta[base + k] = d;
        s2 = s2 + r;
        p1[base + k] = bh + r;
        p2[base + k] = s2;
        r_next = r;
    }
}

// The suffix sums of post train (b, j) at time t (docs/backward.md §4, §5):
//   s1 = sum_{k: t_k > t} r_k e^{-(t_k - t)/tau},  s2 = the same with 2/tau.
// `kk` is the first spike after the previous (earlier or equal) query time; returns false when
// no post spike lies after t. Every exponent is <= 0.
template <typename T>
BS_HD bool suffix_sums(const T* pt, const T* p1, const T* p2, int n, T t, T inv_tau, int& kk,
                       T& s1, T& s2) {
    while (kk < n && !(pt[kk] > t)) ++kk;  // strict: t_iz < t_k
    if (kk == n) return false;
    const T a = bs_exp(-(pt[kk] - t) * inv_tau);
    s1 = a * p1[kk];
    s2 = (a * a) * p2[kk];
    return true;
}

}  // namespace bs
