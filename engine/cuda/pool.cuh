// Per-thread bodies of spike-aggregation pooling (docs/conv-pool.md §3): size x size windows,
// stride size, input (H, W, C) -> output (H / size, W / size, C), channels-last. The output train
// is the time-sorted union of the window's trains (ties in window order, as engine/cpu_pool.py),
// buffer size^2 Ki, and each slot records its source presynaptic slot i Ki + z (-1 if empty).
#pragma once

#include "neuron.cuh"

namespace bs {

// Forward, idx = b*No + j: the window's trains merged by stable insertion.
template <typename T>
BS_HD void pool_forward_thread(idx_t idx, const T* pre_t, const int* pre_c, int h_in, int w_in,
                               int c_in, int k_in, int size, T* out_t, int* out_c, int* src) {
    const int w_out = w_in / size;
    const idx_t n_out = (idx_t)(h_in / size) * w_out * c_in;
    const idx_t n_in = (idx_t)h_in * w_in * c_in;
    const int n_slots = size * size * k_in;
    const idx_t b = idx / n_out;
    const int j = (int)(idx - b * n_out);
    const int cell = j / c_in;
    const int ch = j - cell * c_in;
    const int r = cell / w_out;
    const int c = cell - r * w_out;
    T* ot = out_t + idx * n_slots;
    int* os = src + idx * n_slots;
    int m = 0;
    for (int a = 0; a < size; ++a) {
        for (int d = 0; d < size; ++d) {
            const idx_t i = ((idx_t)(r * size + a) * w_in + c * size + d) * c_in + ch;
            const T* ti = pre_t + (b * n_in + i) * k_in;
            const int cnt = pre_c[b * n_in + i];
            for (int z = 0; z < cnt; ++z) {
                const T t = ti[z];
                int s = m;
                while (s > 0 && ot[s - 1] > t) {
                    ot[s] = ot[s - 1];
                    os[s] = os[s - 1];
                    --s;
                }
                ot[s] = t;
                os[s] = (int)(i * k_in + z);
                ++m;
            }
        }
    }
    out_c[idx] = m;
    for (int s = m; s < n_slots; ++s) {
        ot[s] = bs_inf<T>();
        os[s] = -1;
    }
}

// Backward, idx = b*No + j: each output slot's error goes unchanged to its source slot (every
// source has one owner: no race); phi_pre must start at 0 (a dropped edge keeps it).
template <typename T>
BS_HD void pool_backward_thread(idx_t idx, const T* phi, const int* out_c, const int* src,
                                idx_t n_out, idx_t n_pre_slots, int n_slots, T* phi_pre) {
    const idx_t b = idx / n_out;
    const int m = out_c[idx];
    for (int s = 0; s < m; ++s)
        phi_pre[b * n_pre_slots + src[idx * n_slots + s]] = phi[idx * n_slots + s];
}

}  // namespace bs
