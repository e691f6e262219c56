// The launch pattern of every batscope kernel: a flat 1-D grid with a grid-stride loop over the
// 64-bit thread index (no batch-size limit, no gridDim.y/z caps; docs/implementation.md §5).
#pragma once

#define BS_GRID_STRIDE(i, n)                                                             \
    for (bs::idx_t i = (bs::idx_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);         \
         i += (bs::idx_t)blockDim.x * gridDim.x)
