// __global__ wrappers of the dense-layer kernels: a flat 1-D grid with a grid-stride loop over
// the 64-bit thread index (no batch-size limit, no gridDim.y/z caps; docs/implementation.md §5),
// each step calling the per-thread body from dense.cuh. One extern "C" entry per kernel and dtype,
// so CuPy's RawModule finds them by plain name: bs_<kernel>_f32 / bs_<kernel>_f64.
#include "dense.cuh"
#include "launch.cuh"

#define BS_DENSE_KERNELS(T, SUF)                                                            \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_merge_##SUF(bs::idx_t n_threads, const T* pre_t, const bs::idx_t* order,         \
                       bs::idx_t n_in, bs::idx_t k_in, T inv_tau, T* ev_t, int* ev_i,       \
                       T* ev_q) {                                                          \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::merge_thread<T>(idx, pre_t, order, n_in, k_in, inv_tau, ev_t, ev_i, ev_q);      \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_forward_##SUF(bs::idx_t n_threads, const T* ev_t, const int* ev_i,               \
                         const T* ev_q, const int* n_ev, const T* wt, const int* group,     \
                         bs::idx_t n_out, bs::idx_t n_in, bs::idx_t len, int n_max, T tau,  \
                         T c, T four_c, T theta, T u_reset, double t_max, T lo, T hi,       \
                         T* out_t, int* out_c, T* out_ud) {                                \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::forward_thread<T>(idx, ev_t, ev_i, ev_q, n_ev, wt, group, n_out, n_in, len,     \
                              n_max, tau, c, four_c, theta, u_reset, t_max, lo, hi, out_t,  \
                              out_c, out_ud);                                              \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_delta_##SUF(bs::idx_t n_threads, const T* post_t, const int* post_c,             \
                       const T* udot, const T* phi, int n_slots, T inv_tau, T reset_tau,    \
                       T* delta, T* p1, T* p2) {                                           \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::delta_thread<T>(idx, post_t, post_c, udot, phi, n_slots, inv_tau, reset_tau,    \
                            delta, p1, p2);                                                \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_grad_##SUF(bs::idx_t n_threads, const T* pre_t, const int* pre_c,                \
                      const T* post_t, const int* post_c, const T* p1, const T* p2,         \
                      const bs::idx_t* order, const bs::idx_t* gstart, bs::idx_t n_out,     \
                      bs::idx_t n_in, int k_in, int n_slots, T inv_tau, T* grad) {          \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::grad_thread<T>(idx, pre_t, pre_c, post_t, post_c, p1, p2, order, gstart, n_out, \
                           n_in, k_in, n_slots, inv_tau, grad);                            \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_phi_pre_##SUF(bs::idx_t n_threads, const T* pre_t, const int* pre_c, const T* w, \
                         const int* group, const T* post_t, const int* post_c, const T* p1, \
                         const T* p2, bs::idx_t n_out, bs::idx_t n_in, int k_in,            \
                         int n_slots, T inv_tau, T* phi_pre) {                             \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::phi_pre_thread<T>(idx, pre_t, pre_c, w, group, post_t, post_c, p1, p2, n_out,   \
                              n_in, k_in, n_slots, inv_tau, phi_pre);                      \
    }

BS_DENSE_KERNELS(float, f32)
BS_DENSE_KERNELS(double, f64)
