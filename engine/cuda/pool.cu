// __global__ wrappers of the pooling kernels (launch.cuh's grid-stride loop around the
// per-thread bodies of pool.cuh): bs_pool_<forward|backward>_<f32|f64>.
#include "launch.cuh"
#include "pool.cuh"

#define BS_POOL_KERNELS(T, SUF)                                                             \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_pool_forward_##SUF(bs::idx_t n_threads, const T* pre_t, const int* pre_c,        \
                              int h_in, int w_in, int c_in, int k_in, int size, T* out_t,   \
                              int* out_c, int* src) {                                      \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::pool_forward_thread<T>(idx, pre_t, pre_c, h_in, w_in, c_in, k_in, size, out_t,  \
                                   out_c, src);                                            \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
        bs_pool_backward_##SUF(bs::idx_t n_threads, const T* phi, const int* out_c,         \
                               const int* src, bs::idx_t n_out, bs::idx_t n_pre_slots,      \
                               int n_slots, T* phi_pre) {                                  \
        BS_GRID_STRIDE(idx, n_threads)                                                      \
        bs::pool_backward_thread<T>(idx, phi, out_c, src, n_out, n_pre_slots, n_slots,      \
                                    phi_pre);                                              \
    }

BS_POOL_KERNELS(float, f32)
BS_POOL_KERNELS(double, f64)
