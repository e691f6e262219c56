// Per-thread bodies of the dense-layer kernels (docs/forward.md §5, docs/backward.md): every input
// reaches every post neuron. The neuron maths is neuron.cuh's; the arithmetic mirrors
// engine/cpu_dense.py.
//
// Layouts (docs/model.md §1), all C-contiguous, flat indices in 64 bits:
//   pre_t [B, Ni, Ki], pre_c [B, Ni]    input trains (+inf padded) and counts
//   ev_t, ev_q [B, L], ev_i [B, L]      merged inputs of each sample, L = Ni*Ki
//                                       (docs/forward.md §5)
//   wt [G, Ni, No]                      W transposed, so threads j, j+1 read adjacent weights
//   w  [G, No, Ni]                      W as given (phi_pre reads w[g, j, i] for adjacent i)
//   post_t, udot, delta, p1, p2 [B, No, S], post_c [B, No]
#pragma once

#include "neuron.cuh"

namespace bs {

// Merge (docs/forward.md §5): order[b, :] is the stable argsort of pre_t[b] flattened over (i,
// slot), i.e. the key (t, i, slot). One thread per (b, n): the n-th input of sample b, its neuron
// and the decay ev_q = e^{-(t_n - t_{n-1})/tau} from the previous input (1 for n = 0; the
// docs/forward.md §4 advance). Entries past the sample's last spike are +inf and never read by the
// forward.
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

// Forward of a dense layer, idx = b*No + j: post neuron j of sample b on the sample's merged
// inputs, with the weights of its column of W transposed.
template <typename T>
BS_HD void forward_thread(idx_t idx, const T* ev_t, const int* ev_i, const T* ev_q,
                          const int* n_ev, const T* wt, const int* group, idx_t n_out, idx_t n_in,
                          idx_t len, int n_max, T tau, T c, T four_c, T theta, T u_reset,
                          double t_max, T lo, T hi, T* out_t, int* out_c, T* out_ud) {
    const idx_t b = idx / n_out;
    const idx_t j = idx - b * n_out;
    const T* w = wt + (idx_t)group[b] * n_in * n_out + j;  // w[i * No] = W[g, j, i]
    out_c[idx] = neuron_spikes<T>(ev_t + b * len, ev_i + b * len, ev_q + b * len, n_ev[b], w,
                                  n_out, n_max, tau, c, four_c, theta, u_reset, t_max, lo, hi,
                                  out_t + idx * n_max, out_ud + idx * n_max);
}

// Weight gradient (docs/backward.md §4, paper Eq. 12-13), idx = (g*No + j)*Ni + i:
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

// Error to the previous layer (docs/backward.md §5, paper Eq. 18-19), idx = b*Ni + i:
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
