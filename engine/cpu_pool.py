"""Spike-aggregation pooling on the CPU: k x k windows, stride k (docs/conv-pool.md §3).

The train of output (r, c, ch) is the time-sorted union of the trains of its window in channel
ch (ties in window order), so its buffer is k^2 K_in; each output slot records its source
presynaptic slot ``i K_in + z``. The backward routes each error unchanged to its source
(dt_out/dt_src = 1); inputs of a dropped odd edge are in no window and get zero error.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .cpu_merge import JIT_PARALLEL


@njit(**JIT_PARALLEL)
def pool_forward_kernel(pre_times, pre_counts, h_in, w_in, c_in, k, out_t, out_c, out_src):
    """Union of each window's trains, sorted by time by stable insertion (windows are small);
    every element of the outputs is written (+inf and -1 in empty slots)."""
    n_b = pre_times.shape[0]
    n_k = pre_times.shape[2]
    h_out = h_in // k
    w_out = w_in // k
    for task in prange(n_b * h_out):
        b = task // h_out
        r = task - b * h_out
        for c in range(w_out):
            for ch in range(c_in):
                j = (r * w_out + c) * c_in + ch
                m = 0
                for a in range(k):
                    for d in range(k):
                        i = ((r * k + a) * w_in + c * k + d) * c_in + ch
                        for z in range(pre_counts[b, i]):
                            t = pre_times[b, i, z]
                            s = m
                            while s > 0 and out_t[b, j, s - 1] > t:
                                out_t[b, j, s] = out_t[b, j, s - 1]
                                out_src[b, j, s] = out_src[b, j, s - 1]
                                s -= 1
                            out_t[b, j, s] = t
                            out_src[b, j, s] = i * n_k + z
                            m += 1
                out_c[b, j] = m
                out_t[b, j, m:] = np.inf  # empty slots
                out_src[b, j, m:] = -1


@njit(**JIT_PARALLEL)
def pool_backward_kernel(phi, counts, source, phi_pre):
    """phi_pre[source of slot s of output j] = phi[j, s]: errors routed unchanged; 0 in every
    other slot."""
    n_b, n_o, _ = phi.shape
    n_k = phi_pre.shape[2]
    for b in prange(n_b):
        phi_pre[b] = 0
        for j in range(n_o):
            for s in range(counts[b, j]):
                src = source[b, j, s]
                i = src // n_k
                phi_pre[b, i, src - i * n_k] = phi[b, j, s]
