// Per-thread bodies of the dense-layer kernels (method.md §3.4, §4, §6).
//
// Every function is __host__ __device__: the __global__ wrappers in dense.cu call them from a
// grid-stride loop on the GPU, and the test harness (tests/engine/cuda_host_harness.cpp) loops
// them over every thread index on the CPU, compiled by g++. The arithmetic mirrors engine/cpu.py
// operation by operation (same constants, same order) so the backends agree to rounding.
//
// Layouts (method.md §0), all C-contiguous, flat indices in 64 bits:
//   pre_t [B, Ni, Ki], pre_c [B, Ni]    input trains (+inf padded) and counts
//   ev_t, ev_q [B, L], ev_i [B, L]      merged inputs of each sample, L = Ni*Ki (§4)
//   wt [G, Ni, No]                      W transposed, so threads j, j+1 read adjacent weights
//   w  [G, No, Ni]                      W as given (phi_pre reads w[g, j, i] for adjacent i)
//   post_t, udot, delta, p1, p2 [B, No, S], post_c [B, No]
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

// Merge (method.md §4): order[b, :] is the stable argsort of pre_t[b] flattened over (i, slot),
// i.e. the key (t, i, slot). One thread per (b, n): the n-th input of sample b, its neuron and
// the decay ev_q = e^{-(t_n - t_{n-1})/tau} from the previous input (1 for n = 0; the §3.4
// advance). Entries past the sample's last spike are +inf and never read by the forward.
template <typename T>
BS_HD void merge_thread(idx_t idx, const T* pre_t, const idx_t* order, idx_t n_in, idx_t k_in,
                        T inv_tau, T* ev_t, int* ev_i, T* ev_q) {
    const idx_t len = n_in * k_in;
    const idx_t b = idx / len;
    const idx_t n = idx - b * len;
    const T* row = pre_t + b * len;
    const idx_t s = order[idx];
    const T t = row[s];
    T q = T(1);
    if (n > 0) {
        const T prev = row[order[idx - 1]];
        if (t < bs_inf<T>()) q = bs_exp(-(t - prev) * inv_tau);
    }
    ev_t[idx] = t;
    ev_i[idx] = (int)(s / k_in);
    ev_q[idx] = q;
}

// Forward (method.md §4): the exact event loop of post neuron j on sample b, idx = b*No + j,
// with the re-centred state (g, u) at the last event t_r (§3.4) so every exponent is <= 0, and
// accept-only-if tests (E1)-(E7) so a NaN candidate is rejected, never stored. Operation by
// operation the same as engine/cpu.py (_advance, _emit; constants from cpu.forward_constants).
//
// Precision. Per input, the advance of (g, u) and the pre-test run in T: in the float32 kernel
// the only FP64 on that path is widening t_n into t_r. Two scalars per thread are float64
// bookkeeping (adds and compares): the last event time t_r and a candidate t = t_r + tau ln y,
// so the float32 rounding of an absolute time (~1e-6 s at t = 10 s) neither accumulates along
// a chain of spikes nor decides (E4)-(E6). A candidate that passes the pre-test (y within
// rounding of (t_r, next]: about one per emitted spike, not one per input) is solved in float64
// from the T state with T's constants: D = B'^2 - 4A'c cancels near a tangency (§14.4), so the
// spike time is as exact as the state rather than as a float32 root. On GPUs with slow FP64
// this costs about one sqrt/div/log per spike.
//
// Rounding consistency (§4 note 4: no interval may start above threshold). A candidate outside
// (t_r, next] is rejected only if the advance to `next`, computed exactly as the next input
// computes it, leaves u < theta. Otherwise the crossing lies in (t_r, next] up to rounding and
// its time is clamped into the interval: to `next` when (E6) failed by rounding, to t_r when
// (E4) did (y rounded to <= 1). Rejecting it would start the next interval at u >= theta with
// the upward root in the past, and the neuron would lose this and every later spike. A spike
// clamped to `next` coincides with that input, which is not part of its A and B (§4 note 1),
// as the backward's strict comparisons assume; one clamped to t_r follows the input at t_r
// within rounding, and the strict comparisons drop that input's w eps'(0+)/u_dot from phi_pre
// (the one-sided derivative at the kink, §6.4; eps(0) = 0 keeps the weight gradient exact).
// t_max is the largest T <= T_sim (cpu.below), so a stored spike never exceeds T_sim.
template <typename T>
BS_HD void forward_thread(idx_t idx, const T* ev_t, const int* ev_i, const T* ev_q,
                          const int* n_ev, const T* wt, const int* group, idx_t n_out, idx_t n_in,
                          idx_t len, int n_max, T tau, T c, T four_c, T theta, T u_reset,
                          double t_max, T lo, T hi, T* out_t, int* out_c, T* out_ud) {
    const idx_t b = idx / n_out;
    const idx_t j = idx - b * n_out;
    const T* et = ev_t + b * len;
    const int* ei = ev_i + b * len;
    const T* eq = ev_q + b * len;
    const T* w = wt + (idx_t)group[b] * n_in * n_out + j;  // w[i * No] = W[g, j, i]
    T* ot = out_t + idx * n_max;
    T* ou = out_ud + idx * n_max;
    const T zero = tau - tau;
    const T one = tau / tau;
    const T inv_tau = one / tau;
    const double tau_d = (double)tau;  // T's constants, in float64 for the root
    const double inv_tau_d = 1.0 / tau_d;
    const T t_end = (T)t_max;  // exact: t_max is a T value, so t_n > t_end <=> t_n > t_max
    const int m = n_ev[b];
    T g = zero;   // A' = g(t_r)
    T u = zero;   // u(t_r)
    T qn = one;   // e^{-(t_{n+1} - t_r)/tau}: decay from the last event to the next input
    int n_spk = 0;
    for (int n = 0; n < m && n_spk < n_max; ++n) {
        const T t_n = et[n];
        if (t_n > t_end) break;  // §4.6: later inputs only give rejected candidates
        const T q = qn;
        const T qq = q * q;                    // e^{-(t_n - t_r)/tau_s}
        u = u * q + tau * g * (q - qq);        // §3.4 advance
        g = g * qq + w[(idx_t)ei[n] * n_out];  // input of weight w at t_r
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
            ou[n_spk] = (T)(gd - (double)c);  // u_dot_k = g(t_k) - theta/tau   (§3.3)
            g = (T)gd;
            u = u_reset;  // u <- theta - reset
            t_r = t;
            ++n_spk;
            qn = bs_exp((T)(t_r - (double)nxt) * inv_tau);  // 0 when next = +inf
        }
    }
    out_c[idx] = n_spk;
    for (int k = n_spk; k < n_max; ++k) {  // empty slots: t = +inf, u_dot = 0 (§5)
        ot[k] = bs_inf<T>();
        ou[k] = zero;
    }
}

// Delta (method.md §6.2), idx = b*No + j: delta_k = phi_k + (reset/tau) beta_hat_k with the
// overflow-free recursion beta_hat_k = e^{-(t_{k+1}-t_k)/tau} (beta_hat_{k+1} + r_{k+1}),
// r_k = delta_k / u_dot_k (paper Eq. 20-24). Also the suffix sums at t_k used by §6.3/§6.4:
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

// The suffix sums of post train (b, j) at time t (method.md §6.3/§6.4):
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

// Weight gradient (method.md §6.3, paper Eq. 12-13), idx = (g*No + j)*Ni + i:
//   dL/dw_ji = -sum_b sum_z tau (s1 - s2)(t_iz) = -sum_b sum_k r_k sum_{z: t_iz < t_k} eps(t_k - t_iz)
// summed over the samples of group g in ascending b (order/gstart: a CSR of samples by group).
// Each output element has one owner thread and a fixed summation order: deterministic.
template <typename T>
BS_HD void grad_thread(idx_t idx, const T* pre_t, const int* pre_c, const T* post_t,
                       const int* post_c, const T* p1, const T* p2, const idx_t* order,
                       const idx_t* gstart, idx_t n_out, idx_t n_in, int k_in, int n_slots,
                       T inv_tau, T* grad) {
    const idx_t gj = idx / n_in;
    const idx_t i = idx - gj * n_in;
    const idx_t gi = gj / n_out;
    const idx_t j = gj - gi * n_out;
    const T tau = (inv_tau / inv_tau) / inv_tau;
    T acc = inv_tau - inv_tau;
    for (idx_t o = gstart[gi]; o < gstart[gi + 1]; ++o) {
        const idx_t b = order[o];
        const idx_t post = b * n_out + j;
        const int n = post_c[post];
        if (n == 0) continue;  // silent post neuron: no gradient (dead neuron)
        const idx_t pre = b * n_in + i;
        const int m = pre_c[pre];
        const T* pt = post_t + post * n_slots;
        const T* a1 = p1 + post * n_slots;
        const T* a2 = p2 + post * n_slots;
        const T* ti = pre_t + pre * k_in;
        int kk = 0;
        for (int z = 0; z < m; ++z) {
            T s1, s2;
            if (!suffix_sums(pt, a1, a2, n, ti[z], inv_tau, kk, s1, s2)) break;
            acc -= tau * (s1 - s2);
        }
    }
    grad[idx] = acc;
}

// Error to the previous layer (method.md §6.4, paper Eq. 18-19), idx = b*Ni + i:
//   phi_iz = sum_j w_ji sum_{k: t_jk > t_iz} r_jk eps'(t_jk - t_iz) = sum_j w_ji (2 s2 - s1),
// eps'(s) = 2e^{-2s/tau} - e^{-s/tau}; summed over j in ascending order inside the thread (no
// [B, Ni, Ki, No] temporary). Empty pre slots get 0.
template <typename T>
BS_HD void phi_pre_thread(idx_t idx, const T* pre_t, const int* pre_c, const T* w,
                          const int* group, const T* post_t, const int* post_c, const T* p1,
                          const T* p2, idx_t n_out, idx_t n_in, int k_in, int n_slots, T inv_tau,
                          T* phi_pre) {
    const idx_t b = idx / n_in;
    const idx_t i = idx - b * n_in;
    const int m = pre_c[idx];
    const T zero = inv_tau - inv_tau;
    const T* wi = w + (idx_t)group[b] * n_out * n_in + i;  // wi[j * Ni] = W[g, j, i]
    for (int z = 0; z < k_in; ++z) {
        T acc = zero;
        if (z < m) {
            const T t = pre_t[idx * k_in + z];
            for (idx_t j = 0; j < n_out; ++j) {
                const idx_t post = b * n_out + j;
                const int n = post_c[post];
                if (n == 0) continue;
                int kk = 0;
                T s1, s2;
                if (!suffix_sums(post_t + post * n_slots, p1 + post * n_slots,
                                 p2 + post * n_slots, n, t, inv_tau, kk, s1, s2))
                    continue;
                acc += wi[j * n_in] * (s2 + s2 - s1);
            }
        }
        phi_pre[idx * k_in + z] = acc;
    }
}

}  // namespace bs
