// Host build of engine/cuda/*.cuh for tests/engine/test_cuda_sources.py: each entry loops the
// very per-thread functions the __global__ kernels call over every thread index, serially, so
// the CUDA source is checked against engine/cpu.py on a machine without a GPU.
#include "conv.cuh"
#include "dense.cuh"
#include "pool.cuh"

using bs::idx_t;

#define BS_HOST_ENTRIES(T, SUF)                                                             \
    extern "C" void host_merge_##SUF(idx_t n, const T* pre_t, const idx_t* order,            \
                                     idx_t n_in, idx_t k_in, T inv_tau, T* ev_t, int* ev_i,  \
                                     T* ev_q) {                                             \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::merge_thread<T>(i, pre_t, order, n_in, k_in, inv_tau, ev_t, ev_i, ev_q);     \
    }                                                                                       \
    extern "C" void host_forward_##SUF(idx_t n, const T* ev_t, const int* ev_i,              \
                                       const T* ev_q, const int* n_ev, const T* wt,          \
                                       const int* group, idx_t n_out, idx_t n_in, idx_t len, \
                                       int n_max, T tau, T c, T four_c, T theta, T u_reset,  \
                                       double t_max, T lo, T hi, T* out_t, int* out_c,       \
                                       T* out_ud) {                                         \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::forward_thread<T>(i, ev_t, ev_i, ev_q, n_ev, wt, group, n_out, n_in, len,    \
                                  n_max, tau, c, four_c, theta, u_reset, t_max, lo, hi,     \
                                  out_t, out_c, out_ud);                                    \
    }                                                                                       \
    extern "C" void host_delta_##SUF(idx_t n, const T* post_t, const int* post_c,            \
                                     const T* udot, const T* phi, int n_slots, T inv_tau,    \
                                     T reset_tau, T* delta, T* p1, T* p2) {                 \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::delta_thread<T>(i, post_t, post_c, udot, phi, n_slots, inv_tau, reset_tau,   \
                                delta, p1, p2);                                             \
    }                                                                                       \
    extern "C" void host_grad_##SUF(idx_t n, const T* pre_t, const int* pre_c,               \
                                    const T* post_t, const int* post_c, const T* p1,         \
                                    const T* p2, const idx_t* order, const idx_t* gstart,    \
                                    idx_t n_out, idx_t n_in, int k_in, int n_slots,          \
                                    T inv_tau, T* grad) {                                   \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::grad_thread<T>(i, pre_t, pre_c, post_t, post_c, p1, p2, order, gstart,       \
                               n_out, n_in, k_in, n_slots, inv_tau, grad);                  \
    }                                                                                       \
    extern "C" void host_phi_pre_##SUF(idx_t n, const T* pre_t, const int* pre_c,            \
                                       const T* w, const int* group, const T* post_t,        \
                                       const int* post_c, const T* p1, const T* p2,          \
                                       idx_t n_out, idx_t n_in, int k_in, int n_slots,       \
                                       T inv_tau, T* phi_pre) {                             \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::phi_pre_thread<T>(i, pre_t, pre_c, w, group, post_t, post_c, p1, p2, n_out,  \
                                  n_in, k_in, n_slots, inv_tau, phi_pre);                   \
    }

#define BS_HOST_LAYER_ENTRIES(T, SUF)                                                       \
    extern "C" void host_field_##SUF(idx_t n, const T* ev_t, const idx_t* order,             \
                                     const int* n_ev, idx_t len, int h_in, int w_in,         \
                                     int c_in, int k_in, int k, idx_t f_len, T inv_tau,      \
                                     T* ft, T* fq, int* frow, int* fsrc, int* fn) {          \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::field_thread<T>(i, ev_t, order, n_ev, len, h_in, w_in, c_in, k_in, k, f_len, \
                                inv_tau, ft, fq, frow, fsrc, fn);                           \
    }                                                                                       \
    extern "C" void host_conv_forward_##SUF(                                                \
        idx_t n, const T* ft, const int* frow, const T* fq, const int* fn, const T* rows,   \
        const int* group, idx_t n_p, int c_out, idx_t n_rows, idx_t f_len, int n_max, T tau, \
        T c, T four_c, T theta, T u_reset, double t_max, T lo, T hi, T* out_t, int* out_c,  \
        T* out_ud) {                                                                        \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::conv_forward_thread<T>(i, ft, frow, fq, fn, rows, group, n_p, c_out, n_rows, \
                                       f_len, n_max, tau, c, four_c, theta, u_reset, t_max,  \
                                       lo, hi, out_t, out_c, out_ud);                       \
    }                                                                                       \
    extern "C" void host_conv_grad_##SUF(                                                   \
        idx_t n, const T* pre_t, const int* pre_c, const T* post_t, const int* post_c,      \
        const T* p1, const T* p2, const idx_t* order, const idx_t* gstart, int h_in,        \
        int w_in, int c_in, int k, int c_out, int k_in, int n_slots, T inv_tau, T* grad) {  \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::conv_grad_thread<T>(i, pre_t, pre_c, post_t, post_c, p1, p2, order, gstart,  \
                                    h_in, w_in, c_in, k, c_out, k_in, n_slots, inv_tau,     \
                                    grad);                                                  \
    }                                                                                       \
    extern "C" void host_conv_phi_pre_##SUF(                                                \
        idx_t n, const T* pre_t, const int* pre_c, const T* w, const int* group,            \
        const T* post_t, const int* post_c, const T* p1, const T* p2, int h_in, int w_in,   \
        int c_in, int k, int c_out, int k_in, int n_slots, T inv_tau, T* phi_pre) {         \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::conv_phi_pre_thread<T>(i, pre_t, pre_c, w, group, post_t, post_c, p1, p2,   \
                                       h_in, w_in, c_in, k, c_out, k_in, n_slots, inv_tau,  \
                                       phi_pre);                                            \
    }                                                                                       \
    extern "C" void host_pool_forward_##SUF(idx_t n, const T* pre_t, const int* pre_c,       \
                                            int h_in, int w_in, int c_in, int k_in,          \
                                            int size, T* out_t, int* out_c, int* src) {      \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::pool_forward_thread<T>(i, pre_t, pre_c, h_in, w_in, c_in, k_in, size, out_t, \
                                       out_c, src);                                         \
    }                                                                                       \
    extern "C" void host_pool_backward_##SUF(idx_t n, const T* phi, const int* out_c,        \
                                             const int* src, idx_t n_out, idx_t n_pre_slots, \
                                             int n_slots, T* phi_pre) {                     \
        for (idx_t i = 0; i < n; ++i)                                                       \
            bs::pool_backward_thread<T>(i, phi, out_c, src, n_out, n_pre_slots, n_slots,     \
                                        phi_pre);                                           \
    }

BS_HOST_ENTRIES(float, f32)
BS_HOST_ENTRIES(double, f64)
BS_HOST_LAYER_ENTRIES(float, f32)
BS_HOST_LAYER_ENTRIES(double, f64)
