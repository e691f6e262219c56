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
// accept-only-if tests (E1)-(E7) so a NaN candidate is rejected, never stored. t_max is the
// largest T <= T_sim (gpu.py rounds it down), so `t <= t_max` in T is exactly t <= T_sim.
template <typename T>
BS_HD void forward_thread(idx_t idx, const T* ev_t, const int* ev_i, const T* ev_q,
                          const int* n_ev, const T* wt, const int* group, idx_t n_out, idx_t n_in,
                          idx_t len, int n_max, T tau, T c, T four_c, T u_reset, T t_max,
                          T* out_t, int* out_c, T* out_ud) {
    const idx_t b = idx / n_out;
    const idx_t j = idx - b * n_out;
    const T* et = ev_t + b * len;
    const int* ei = ev_i + b * len;
    const T* eq = ev_q + b * len;
    const T* w = wt + (idx_t)group[b] * n_in * n_out + j;  // w[i * No] = W[g, j, i]
    T* ot = out_t + idx * n_max;
    T* ou = out_ud + idx * n_max;
    const T zero = tau - tau;
    const T inv_tau = (tau / tau) / tau;
    const int m = n_ev[b];
    T g = zero;  // A' = g(t_r)
    T u = zero;  // u(t_r)
    T t_r = zero;
    int n_spk = 0;
    bool spiked = false;
    for (int n = 0; n < m && n_spk < n_max; ++n) {
        const T t_n = et[n];
        if (t_n > t_max) break;  // §4.6: later inputs only give rejected candidates
        T q;
        if (spiked) {  // the last event was a post spike: decay from it, not from t_{n-1}
            q = bs_exp(-(t_n - t_r) * inv_tau);
            spiked = false;
        } else {
            q = eq[n];
        }
        const T qq = q * q;                 // e^{-(t_n - t_r)/tau_s}
        u = u * q + tau * g * (q - qq);     // §3.4 advance
        g = g * qq + w[(idx_t)ei[n] * n_out];  // input of weight w at t_r
        t_r = t_n;
        const T nxt = (n + 1 < m) ? et[n + 1] : bs_inf<T>();
        while (true) {  // zero or more spikes in (t_n, next]
            const T bp = g + u * inv_tau;    // B' = g + u/tau
            const T d = bp * bp - four_c * g;  // D = B'^2 - 4 A' c   (paper Eq. 9)
            if (!(d >= zero)) break;         // (E1)
            const T x = bs_sqrt(d);
            const T den = bp + x;
            if (!(den > zero)) break;        // (E2)
            const T y = (g + g) / den;       // y' = 2A'/(B' + x')   (paper Eq. 10)
            if (!(y > zero)) break;          // (E3)
            const T t = t_r + tau * bs_log(y);
            if (!(t > t_r)) break;           // (E4) t_r is the last event
            if (!(t <= t_max)) break;  // (E5)
            if (!(t <= nxt)) break;          // (E6)
            const T qs = bs_exp(-(t - t_r) * inv_tau);
            g = g * (qs * qs);
            ot[n_spk] = t;
            ou[n_spk] = g - c;  // u_dot_k = g(t_k) - theta/tau   (§3.3)
            u = u_reset;        // u <- theta - reset
            t_r = t;
            spiked = true;
            ++n_spk;
            if (n_spk == n_max) break;  // (E7)
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
