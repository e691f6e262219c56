// Per-thread bodies of the conv-layer kernels (docs/conv-pool.md §2): valid cross-correlation,
// stride 1. Input (H, W, Ci), output (Ho, Wo, Co) = (H - k + 1, W - k + 1, Co), neurons
// flattened channels-last, row-major: pre (r, c, ci) is (r W + c) Ci + ci. The neuron maths is
// neuron.cuh's; the input lists and their order are engine/cpu_conv.py's.
//
// Layouts, all C-contiguous, flat indices in 64 bits:
//   ev_t [B, L], order [B, L]           the sample's merged inputs (dense.cuh merge_thread) and
//                                       their flat presynaptic slots s = i Ki + z
//   ft, fq [B, P, F], frow, fsrc        each output position's field list: time, decay, weight
//   fn [B, P]                           row (p k + q) Ci + ci, slot s; F = k k Ci Ki, P = Ho Wo
//   rows [G, k k Ci, Co]                W [G, Co, k, k, Ci] as rows over output channels
//   w [G, Co, k, k, Ci]                 W as given (the errors to presynaptic spikes)
//   post_t, p1, p2 [B, P Co, S], post_c [B, P Co]
#pragma once

#include "neuron.cuh"

namespace bs {

// Field lists, idx = b*P + pos: the sample's merged inputs (key (t, i, slot)) filtered to the
// receptive field of output position pos, so each list keeps that key (as engine/cpu_conv.py),
// with the decay fq = e^{-(t_n - t_{n-1})/tau} between consecutive field inputs (1 for n = 0).
template <typename T>
BS_HD void field_thread(idx_t idx, const T* ev_t, const idx_t* order, const int* n_ev,
                        idx_t len, int h_in, int w_in, int c_in, int k_in, int k, idx_t f_len,
                        T inv_tau, T* ft, T* fq, int* frow, int* fsrc, int* fn) {
    const int w_out = w_in - k + 1;
    const idx_t n_p = (idx_t)(h_in - k + 1) * w_out;
    const idx_t b = idx / n_p;
    const int pos = (int)(idx - b * n_p);
    const int r = pos / w_out;
    const int c = pos - r * w_out;
    const T* et = ev_t + b * len;
    const idx_t* eo = order + b * len;
    T* ot = ft + idx * f_len;
    T* oq = fq + idx * f_len;
    int* orow = frow + idx * f_len;
    int* osrc = fsrc + idx * f_len;
    const int m = n_ev[b];
    int a = 0;
    T prev = T(0);
    for (int n = 0; n < m; ++n) {
        const idx_t s = eo[n];
        const int i = (int)(s / k_in);
        const int cell = i / c_in;
        const int ri = cell / w_in;
        const int ci_col = cell - ri * w_in;
        if (ri < r || ri >= r + k || ci_col < c || ci_col >= c + k) continue;
        const T t = et[n];
        if (a == 0) prev = t;
        ot[a] = t;
        oq[a] = bs_exp(-(t - prev) * inv_tau);
        orow[a] = ((ri - r) * k + ci_col - c) * c_in + (i - cell * c_in);
        osrc[a] = (int)s;
        prev = t;
        ++a;
    }
    fn[idx] = a;
}

// Forward of a conv layer, idx = (b*P + pos)*Co + co: output channel co at position pos of
// sample b on the position's field list, with weight rows[row * Co] of its channel.
template <typename T>
BS_HD void conv_forward_thread(idx_t idx, const T* ft, const int* frow, const T* fq,
                               const int* fn, const T* rows, const int* group, idx_t n_p,
                               int c_out, idx_t n_rows, idx_t f_len, int n_max, T tau, T c,
                               T four_c, T theta, T u_reset, double t_max, T lo, T hi, T* out_t,
                               int* out_c, T* out_ud) {
    const idx_t bp = idx / c_out;
    const idx_t co = idx - bp * c_out;
    const idx_t b = bp / n_p;
    const T* w = rows + (idx_t)group[b] * n_rows * c_out + co;
    out_c[idx] = neuron_spikes<T>(ft + bp * f_len, frow + bp * f_len, fq + bp * f_len, fn[bp],
                                  w, c_out, n_max, tau, c, four_c, theta, u_reset, t_max, lo,
                                  hi, out_t + idx * n_max, out_ud + idx * n_max);
}

// Shared-weight gradient (docs/conv-pool.md §2, docs/backward.md §4), idx = (g*Co + co)*R + row,
// row = (p k + q) Ci + ci: dL/dW[g, co, p, q, ci] = -sum_b sum_pos sum_z tau (s1 - s2)(t_iz) over
// the samples of group g (ascending b), every output position pos = (r, c) and the spikes z of its
// presynaptic neuron i = ((r + p) W + c + q) Ci + ci. One owner thread, fixed order: deterministic.
template <typename T>
BS_HD void conv_grad_thread(idx_t idx, const T* pre_t, const int* pre_c, const T* post_t,
                            const int* post_c, const T* p1, const T* p2, const idx_t* order,
                            const idx_t* gstart, int h_in, int w_in, int c_in, int k, int c_out,
                            int k_in, int n_slots, T inv_tau, T* grad) {
    const idx_t n_rows = (idx_t)k * k * c_in;
    const idx_t gc = idx / n_rows;
    const int row = (int)(idx - gc * n_rows);
    const idx_t gi = gc / c_out;
    const int co = (int)(gc - gi * c_out);
    const int pq = row / c_in;
    const int ci = row - pq * c_in;
    const int dr = pq / k;
    const int dc = pq - dr * k;
    const int h_out = h_in - k + 1;
    const int w_out = w_in - k + 1;
    const idx_t n_in = (idx_t)h_in * w_in * c_in;
    const idx_t n_out = (idx_t)h_out * w_out * c_out;
    const T tau = (inv_tau / inv_tau) / inv_tau;
    T acc = inv_tau - inv_tau;
    for (idx_t o = gstart[gi]; o < gstart[gi + 1]; ++o) {
        const idx_t b = order[o];
        for (int r = 0; r < h_out; ++r) {
            for (int c = 0; c < w_out; ++c) {
                const idx_t post = b * n_out + ((idx_t)r * w_out + c) * c_out + co;
                const int n = post_c[post];
                if (n == 0) continue;  // silent post neuron: no gradient
                const idx_t pre = b * n_in + ((idx_t)(r + dr) * w_in + c + dc) * c_in + ci;
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
        }
    }
    grad[idx] = acc;
}

// Errors to presynaptic spikes (docs/conv-pool.md §2, docs/backward.md §5), idx = b*Ni + i, pre i =
// (r, c, ci): phi_iz = sum over every output (r - p, c - q, co) inside the grid of
// W[g, co, p, q, ci] (2 s2 - s1) at t_iz, in ascending (p, q, co). Empty slots get 0.
template <typename T>
BS_HD void conv_phi_pre_thread(idx_t idx, const T* pre_t, const int* pre_c, const T* w,
                               const int* group, const T* post_t, const int* post_c,
                               const T* p1, const T* p2, int h_in, int w_in, int c_in, int k,
                               int c_out, int k_in, int n_slots, T inv_tau, T* phi_pre) {
    const idx_t n_in = (idx_t)h_in * w_in * c_in;
    const idx_t b = idx / n_in;
    const int i = (int)(idx - b * n_in);
    const int cell = i / c_in;
    const int ci = i - cell * c_in;
    const int ri = cell / w_in;
    const int cj = cell - ri * w_in;
    const int h_out = h_in - k + 1;
    const int w_out = w_in - k + 1;
    const idx_t n_out = (idx_t)h_out * w_out * c_out;
    const int m = pre_c[idx];
    const T zero = inv_tau - inv_tau;
    const T* wg = w + (idx_t)group[b] * c_out * k * k * c_in;
    for (int z = 0; z < k_in; ++z) {
        T acc = zero;
        if (z < m) {
            const T t = pre_t[idx * k_in + z];
            for (int dr = 0; dr < k; ++dr) {
                const int r = ri - dr;
                if (r < 0 || r >= h_out) continue;
                for (int dc = 0; dc < k; ++dc) {
                    const int c = cj - dc;
                    if (c < 0 || c >= w_out) continue;
                    const idx_t post0 = b * n_out + ((idx_t)r * w_out + c) * c_out;
                    for (int co = 0; co < c_out; ++co) {
                        const idx_t post = post0 + co;
                        const int n = post_c[post];
                        if (n == 0) continue;
                        int kk = 0;
                        T s1, s2;
                        if (!suffix_sums(post_t + post * n_slots, p1 + post * n_slots,
                                         p2 + post * n_slots, n, t, inv_tau, kk, s1, s2))
                            continue;
                        const T wv = wg[(((idx_t)co * k + dr) * k + dc) * c_in + ci];
                        acc += wv * (s2 + s2 - s1);
                    }
                }
            }
        }
        phi_pre[idx * k_in + z] = acc;
    }
}

}  // namespace bs
