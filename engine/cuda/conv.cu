// __global__ wrappers of the conv-layer kernels (launch.cuh's grid-stride loop around the
// per-thread bodies of conv.cuh). One extern "C" entry per kernel and dtype:
// bs_<kernel>_f32 / bs_<kernel>_f64.
#include "conv.cuh"
#include "launch.cuh"

#define BS_CONV_KERNELS(T, SUF)                                                             \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_field_##SUF(bs::idx_t n_threads, const T* ev_t, const bs::idx_t* order,          \
                       const int* n_ev, bs::idx_t len, int h_in, int w_in, int c_in,        \
                       int k_in, int k, bs::idx_t f_len, T inv_tau, T* ft, T* fq,           \
                       int* frow, int* fsrc, int* fn) {                                    \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::field_thread<T>(idx, ev_t, order, n_ev, len, h_in, w_in, c_in, k_in, k, f_len,  \
                            inv_tau, ft, fq, frow, fsrc, fn);                               \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_conv_forward_##SUF(bs::idx_t n_threads, const T* ft, const int* frow,            \
                              const T* fq, const int* fn, const T* rows, const int* group,  \
                              bs::idx_t n_p, int c_out, bs::idx_t n_rows, bs::idx_t f_len,  \
                              int n_max, T tau, T c, T four_c, T theta, T u_reset,          \
                              double t_max, T lo, T hi, T* out_t, int* out_c, T* out_ud) {  \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::conv_forward_thread<T>(idx, ft, frow, fq, fn, rows, group, n_p, c_out, n_rows,  \
                                   f_len, n_max, tau, c, four_c, theta, u_reset, t_max, lo, \
                                   hi, out_t, out_c, out_ud);                              \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_conv_grad_##SUF(bs::idx_t n_threads, const T* pre_t, const int* pre_c,           \
                           const T* post_t, const int* post_c, const T* p1, const T* p2,    \
                           const bs::idx_t* order, const bs::idx_t* gstart, int h_in,       \
                           int w_in, int c_in, int k, int c_out, int k_in, int n_slots,     \
                           T inv_tau, T* grad) {                                           \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::conv_grad_thread<T>(idx, pre_t, pre_c, post_t, post_c, p1, p2, order, gstart,   \
                                h_in, w_in, c_in, k, c_out, k_in, n_slots, inv_tau, grad);  \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_conv_phi_pre_##SUF(bs::idx_t n_threads, const T* pre_t, const int* pre_c,        \
                              const T* w, const int* group, const T* post_t,                \
                              const int* post_c, const T* p1, const T* p2, int h_in,        \
                              int w_in, int c_in, int k, int c_out, int k_in, int n_slots,  \
                              T inv_tau, T* phi_pre) {                                     \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::conv_phi_pre_thread<T>(idx, pre_t, pre_c, w, group, post_t, post_c, p1, p2,     \
                                   h_in, w_in, c_in, k, c_out, k_in, n_slots, inv_tau,      \
                                   phi_pre);                                               \
    }

BS_CONV_KERNELS(float, f32)
BS_CONV_KERNELS(double, f64)
