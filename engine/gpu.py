"""GPU backend: CuPy drivers of the CUDA kernels in ``engine/cuda`` (same API as engine.cpu).

Design note.
- Kernels are CUDA C++ compiled at run time by CuPy's ``RawModule`` (NVRTC) from ``dense.cu`` +
  ``dense.cuh``, shipped as package data, compiled lazily on first use and cached (in memory
  here, on disk by CuPy). CUDA C++ rather than ``cupyx.jit`` or numba-cuda: one plain source that
  nvcc compiles in CI without a GPU (tests/engine/test_cuda_sources.py), whose per-thread bodies
  are ``__host__ __device__`` functions that g++ also builds into a host library, so the very
  code the GPU runs is checked against engine/cpu.py on any machine; the numerics (float32 and
  float64 variants, no fast-math intrinsics, no FMA contraction) are explicit and the same on
  both sides.
- The arithmetic mirrors engine/cpu.py step by step: the re-centred state (docs/forward.md §4, every
  exponent <= 0), accept-only-if tests (E1)-(E7), the same constants (cpu.forward_constants,
  so importing this module loads Numba, a core dependency), and in float32 the same float64
  bookkeeping of event times and float64 root of the rare candidates that pass the float32
  pre-test (see dense.cuh "Precision"; the per-input path is float32).
- Layout: a flat 1-D grid with a grid-stride loop over a 64-bit index; no batch-size limit and no
  gridDim.y/z caps (docs/implementation.md §5). Forward: one thread per (sample, post neuron),
  adjacent threads = adjacent post neurons of one sample, so they read the same merged input list
  (broadcast) and adjacent weights of the transposed W. Backward: delta and the suffix sums of
  r_k = delta_k/u_dot_k per (sample, post neuron); grad[g, j, i] by one thread per (g, j, i)
  looping over the samples of group g; phi_pre by one thread per (sample, pre neuron) looping
  over the post neurons. Every output element has a single owner thread and a fixed summation
  order: results are bitwise deterministic, with no atomics and no [B, No, Ni] or
  [B, Ni, Ki, No] temporaries (docs/implementation.md §4).
- Input merge (docs/forward.md §5): one stable per-sample argsort of the flattened [B, Ni*Ki] times
  on the device gives the key (t, i, slot); +inf slots sort last and the forward stops at each
  sample's spike count, summed on the device. No host sync anywhere in a layer
  (docs/implementation.md §5).

- backend's GPU detection runs :func:`smoke_test` (compile + one closed-form spike), so
  ``backend="auto"`` falls back to the CPU when the kernels cannot be built or run.
- Memory: :func:`reset_peak_memory` before and :func:`peak_memory_bytes` after a run measure the
  peak held by CuPy's pool; :func:`free_gpu_memory` returns the cached blocks.

The drivers take the array module ``xp`` and a ``launch(name, dtype, n_threads, *args)``
callable, so the tests run the same driver code with NumPy and a host build of the kernels.
"""

from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import numpy as np

from .backend import xp_for
from .cpu import forward_constants
from .entry_checks import checked_post, checked_pre
from .spikes import bounded_counts

CUDA_DIR = Path(__file__).resolve().parent / "cuda"
# IEEE-rounded operations without FMA contraction, as on the CPU: only exp/log rounding differs.
NVRTC_OPTIONS = ("--std=c++17", "--fmad=false")
_BLOCK = 256
_SUFFIX = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64"}
_peak_bytes = 0


# --------------------------------------------------------------------------------------------
# Compilation and launch
# --------------------------------------------------------------------------------------------
_INCLUDE = re.compile(r'^#include "([\w.]+)"$', re.MULTILINE)
CUDA_SOURCES = ("dense.cu", "conv.cu", "pool.cu")  # one per layer type, compiled as one module


def kernel_source() -> str:
    """Every .cu of ``CUDA_SOURCES`` with its local headers inlined, each header once (as
    ``#pragma once``), so NVRTC needs no include path and CuPy's source-keyed disk cache sees
    every edit."""
    seen: set[str] = set()

    def inline(name: str) -> str:
        path = CUDA_DIR / name
        if not path.is_file():
            raise RuntimeError(f"{path} is missing")
        seen.add(name)
        text = path.read_text().replace("#pragma once\n", "")

        def header(m):
            return "" if m.group(1) in seen else inline(m.group(1))

        return _INCLUDE.sub(header, text)

    return "\n".join(inline(name) for name in CUDA_SOURCES)


def _cupy():
    """CuPy itself (the launch path must not call backend.xp_for: see :func:`smoke_test`)."""
    import cupy  # noqa: PLC0415

    return cupy


@functools.cache
def _module(device_id: int):
    cp = _cupy()
    return cp.RawModule(code=kernel_source(), options=NVRTC_OPTIONS)


@functools.cache
def _max_blocks(device_id: int) -> int:
    cp = _cupy()
    return 32 * int(cp.cuda.Device(device_id).attributes["MultiProcessorCount"])


def cuda_launch(name: str, dtype, n_threads: int, *args) -> None:
    """Launch ``bs_<name>_<f32|f64>`` over ``n_threads`` on the current device and stream."""
    if n_threads == 0:
        return
    cp = _cupy()
    dev = cp.cuda.Device().id
    kernel = _module(dev).get_function(f"bs_{name}_{_SUFFIX[np.dtype(dtype)]}")
    grid = min(-(-n_threads // _BLOCK), _max_blocks(dev))
    kernel((grid,), (_BLOCK,), (np.int64(n_threads), *args))


def smoke_test(xp=None, launch=None) -> None:
    """Compile the kernels and check one spike against its closed form (paper Eq. 10).

    Called by backend's GPU detection (CuPy and :func:`cuda_launch` by default), so ``auto``
    falls back to the CPU when the kernels cannot be built or run; raises on any failure.
    """
    cp = _cupy() if xp is None else xp
    launch = cuda_launch if launch is None else launch
    w, tau_s, theta = 2.0, 0.1, 0.05
    tau = 2 * tau_s
    x = math.sqrt(w * w - 4 * w * theta / tau)  # A = B = w at t = 0
    t_k = tau * math.log(2 * w / (w + x))
    expect = (1, t_k, x * math.exp(-t_k / tau))  # u_dot_k = x e^{-t_k/tau} (docs/forward.md §3)
    for dt in _SUFFIX:
        t, c, ud = forward_with(
            cp, launch, cp.zeros((1, 1, 1), dt), cp.ones((1, 1), np.int32),
            cp.full((1, 1, 1), w, dt), cp.zeros(1, np.int32), tau_s, theta, theta, 1, 1.0,
        )  # fmt: skip
        got = (int(c[0, 0]), float(t[0, 0, 0]), float(ud[0, 0, 0]))
        if not (got[0] == 1 and np.allclose(got[1:], expect[1:], rtol=1e-5, atol=0)):
            raise RuntimeError(f"GPU kernel self-test failed ({dt.name}): {got} != {expect}")


# --------------------------------------------------------------------------------------------
# Drivers (shared by the GPU and the host test build)
# --------------------------------------------------------------------------------------------
def _argsort_stable(xp, a):
    """Stable argsort along the last axis (CuPy's argsort is always stable)."""
    return xp.argsort(a, axis=-1, kind="stable") if xp is np else xp.argsort(a, axis=-1)


def _prep(xp, pre_times, pre_counts, W, group, n_pre=None):
    """Checked arguments; ``n_pre`` (default ``W.shape[2]``): the presynaptic neurons."""
    W = xp.ascontiguousarray(xp.asarray(W))
    dt = np.dtype(W.dtype)
    if dt not in _SUFFIX:
        raise TypeError(f"W must be float32 or float64, got {dt}")
    if W.ndim != 3:
        raise ValueError(f"W must have shape [G, n_post, n_pre], got {W.shape}")
    n_pre = W.shape[2] if n_pre is None else n_pre
    # Group values are checked only when they come from the host: on the device it costs a sync.
    pre_times, pre_counts, group = checked_pre(
        xp, pre_times, pre_counts, group, n_pre, W.shape[0], dt, isinstance(group, np.ndarray)
    )
    return pre_times, pre_counts, W, group, dt


def forward_with(xp, launch, pre_times, pre_counts, W, group, tau_s, theta, reset, n_max, t_max):
    """:func:`dense_forward` on array module ``xp`` with kernel launcher ``launch``."""
    pre_times, pre_counts, W, group, dt = _prep(xp, pre_times, pre_counts, W, group)
    n_b, n_i, k_i = pre_times.shape
    n_o, n_s = W.shape[1], int(n_max)
    if n_s < 1:
        raise ValueError(f"n_max must be >= 1, got {n_max}")
    tau = 2.0 * float(tau_s)  # tau = 2 tau_s (docs/model.md §2)
    # the CPU's constants, so both backends round alike
    tau_t, c, four_c, theta_t, u_reset, t_lim, lo, hi = forward_constants(
        dt, tau_s, theta, reset, t_max
    )
    length = n_i * k_i
    # Merge (docs/forward.md §5): a stable argsort of the (i, slot)-ordered times is the key (t, i,
    # slot).
    order = _argsort_stable(xp, pre_times.reshape(n_b, length))
    ev_t = xp.empty((n_b, length), dtype=dt)
    ev_i = xp.empty((n_b, length), dtype=np.int32)
    ev_q = xp.empty((n_b, length), dtype=dt)
    # fmt: off
    launch("merge", dt, n_b * length, pre_times, order, np.int64(n_i), np.int64(k_i),
           dt.type(1.0 / tau), ev_t, ev_i, ev_q)
    # fmt: on
    del order
    n_ev = pre_counts.sum(axis=1, dtype=np.int32)
    wt = xp.ascontiguousarray(W.transpose(0, 2, 1))
    out_t = xp.empty((n_b, n_o, n_s), dtype=dt)
    out_c = xp.empty((n_b, n_o), dtype=np.int32)
    out_ud = xp.empty((n_b, n_o, n_s), dtype=dt)
    _sample_memory(xp)
    # fmt: off
    launch("forward", dt, n_b * n_o, ev_t, ev_i, ev_q, n_ev, wt, group, np.int64(n_o),
           np.int64(n_i), np.int64(length), np.int32(n_s), tau_t, c, four_c, theta_t, u_reset,
           np.float64(t_lim), lo, hi, out_t, out_c, out_ud)
    # fmt: on
    return out_t, out_c, out_ud


def _deltas(xp, launch, post_times, post_counts, udot, phi, dt, tau, reset):
    """docs/backward.md §3: delta (the α·β recursion), and the suffix sums p1, p2 of r_k =
    delta_k/u_dot_k at each t_k, shared by every layer type's gradient and presynaptic errors."""
    n_b, n_o, n_s = post_times.shape
    delta = xp.empty_like(post_times)
    p1 = xp.empty_like(post_times)
    p2 = xp.empty_like(post_times)
    # fmt: off
    launch("delta", dt, n_b * n_o, post_times, post_counts, udot, phi, np.int32(n_s),
           dt.type(1.0 / tau), dt.type(float(reset) / tau), delta, p1, p2)
    # fmt: on
    return delta, p1, p2


def _post_deltas(xp, launch, post_times, post_counts, udot, phi, n_b, n_o, dt, tau_s, reset):
    """The checked post arrays of a backward call and their :func:`_deltas`: ``(post_times,
    post_counts, delta, p1, p2, 1/tau)`` with ``tau = 2 tau_s``."""
    post_times, post_counts, udot, phi = checked_post(
        xp, post_times, post_counts, udot, phi, n_b, n_o, dt
    )
    tau = 2.0 * float(tau_s)
    delta, p1, p2 = _deltas(xp, launch, post_times, post_counts, udot, phi, dt, tau, reset)
    return post_times, post_counts, delta, p1, p2, dt.type(1.0 / tau)


def _group_csr(xp, group, n_g):
    """The samples grouped by weight group, a CSR in ascending b: ``(order, gstart)``, the
    samples of group g are ``order[gstart[g]:gstart[g + 1]]`` (int64)."""
    order = _argsort_stable(xp, group).astype(np.int64)
    gstart = xp.searchsorted(group[order], xp.arange(n_g + 1, dtype=np.int32)).astype(np.int64)
    return order, gstart


def backward_with(
    xp,
    launch,
    pre_times,
    pre_counts,
    W,
    group,
    post_times,
    post_counts,
    udot,
    phi,
    tau_s,
    reset,
    need_pre,
):
    """:func:`dense_backward` on array module ``xp`` with kernel launcher ``launch``."""
    pre_times, pre_counts, W, group, dt = _prep(xp, pre_times, pre_counts, W, group)
    n_b, n_i, k_i = pre_times.shape
    n_g, n_o = W.shape[0], W.shape[1]
    post_times, post_counts, delta, p1, p2, inv_tau = _post_deltas(
        xp, launch, post_times, post_counts, udot, phi, n_b, n_o, dt, tau_s, reset
    )
    n_s = post_times.shape[2]

    # docs/backward.md §4: grad[g] summed over the samples of group g (a CSR of samples by group,
    # ascending b).
    order, gstart = _group_csr(xp, group, n_g)
    grad = xp.empty_like(W)
    _sample_memory(xp)
    # fmt: off
    launch("grad", dt, n_g * n_o * n_i, pre_times, pre_counts, post_times, post_counts, p1, p2,
           order, gstart, np.int64(n_o), np.int64(n_i), np.int32(k_i), np.int32(n_s), inv_tau,
           grad)
    # fmt: on

    phi_pre = None
    if need_pre:  # docs/backward.md §5, with the pre-update W
        phi_pre = xp.empty_like(pre_times)
        # fmt: off
        launch("phi_pre", dt, n_b * n_i, pre_times, pre_counts, W, group, post_times, post_counts,
               p1, p2, np.int64(n_o), np.int64(n_i), np.int32(k_i), np.int32(n_s), inv_tau,
               phi_pre)
        # fmt: on
    return delta, grad, phi_pre


def _merged(xp, launch, pre_times, dt, tau):
    """The dense merge (key (t, i, slot)) of each sample, with the argsort kept: ``(ev_t, order,
    n_ev)``; order[b, n] is the flat presynaptic slot i Ki + z of input n."""
    n_b, n_i, k_i = pre_times.shape
    length = n_i * k_i
    order = _argsort_stable(xp, pre_times.reshape(n_b, length)).astype(np.int64)
    ev_t = xp.empty((n_b, length), dtype=dt)
    ev_i = xp.empty((n_b, length), dtype=np.int32)
    ev_q = xp.empty((n_b, length), dtype=dt)
    # fmt: off
    launch("merge", dt, n_b * length, pre_times, order, np.int64(n_i), np.int64(k_i),
           dt.type(1.0 / tau), ev_t, ev_i, ev_q)
    # fmt: on
    return ev_t, order


def conv_forward_with(
    xp, launch, pre_times, pre_counts, W, group, in_shape, tau_s, theta, reset, n_max, t_max
):
    """:func:`conv_forward` on array module ``xp`` with kernel launcher ``launch``."""
    pre_times, pre_counts, W, rows, group, dt, geo = _conv_inputs(
        xp, pre_times, pre_counts, W, group, in_shape
    )
    h_in, w_in, c_in, k, c_out = geo
    n_b, _, k_i = pre_times.shape
    n_s = int(n_max)
    if n_s < 1:
        raise ValueError(f"n_max must be >= 1, got {n_max}")
    tau = 2.0 * float(tau_s)
    tau_t, c, four_c, theta_t, u_reset, t_lim, lo, hi = forward_constants(
        dt, tau_s, theta, reset, t_max
    )
    n_p = (h_in - k + 1) * (w_in - k + 1)
    f_len = k * k * c_in * k_i
    ev_t, order = _merged(xp, launch, pre_times, dt, tau)
    n_ev = pre_counts.sum(axis=1, dtype=np.int32)
    ft = xp.empty((n_b, n_p, f_len), dtype=dt)
    fq = xp.empty((n_b, n_p, f_len), dtype=dt)
    frow = xp.empty((n_b, n_p, f_len), dtype=np.int32)
    fsrc = xp.empty((n_b, n_p, f_len), dtype=np.int32)
    fn = xp.empty((n_b, n_p), dtype=np.int32)
    # fmt: off
    launch("field", dt, n_b * n_p, ev_t, order, n_ev, np.int64(ev_t.shape[1]), np.int32(h_in),
           np.int32(w_in), np.int32(c_in), np.int32(k_i), np.int32(k), np.int64(f_len),
           dt.type(1.0 / tau), ft, fq, frow, fsrc, fn)
    # fmt: on
    del ev_t, order, fsrc
    n_o = n_p * c_out
    out_t = xp.empty((n_b, n_o, n_s), dtype=dt)
    out_c = xp.empty((n_b, n_o), dtype=np.int32)
    out_ud = xp.empty((n_b, n_o, n_s), dtype=dt)
    _sample_memory(xp)
    # fmt: off
    launch("conv_forward", dt, n_b * n_o, ft, frow, fq, fn, rows, group, np.int64(n_p),
           np.int32(c_out), np.int64(rows.shape[1]), np.int64(f_len), np.int32(n_s), tau_t, c,
           four_c, theta_t, u_reset, np.float64(t_lim), lo, hi, out_t, out_c, out_ud)
    # fmt: on
    return out_t, out_c, out_ud


def _conv_inputs(xp, pre_times, pre_counts, W, group, in_shape):
    """Checked conv arguments: ``(pre_times, pre_counts, W, rows [G, k k C_in, C_out], group,
    dtype, (H, W, C_in, k, C_out))``."""
    W = xp.ascontiguousarray(xp.asarray(W))
    if W.ndim != 5 or W.shape[2] != W.shape[3]:
        raise ValueError(f"W must have shape [G, C_out, k, k, C_in], got {W.shape}")
    h_in, w_in, c_in = (int(s) for s in in_shape)
    k, c_out = int(W.shape[2]), int(W.shape[1])
    if W.shape[4] != c_in or k > min(h_in, w_in):
        raise ValueError(f"W of shape {W.shape} does not fit the input {tuple(in_shape)}")
    flat = xp.ascontiguousarray(W.reshape(W.shape[0], c_out, -1))  # [G, C_out, R]
    pre_times, pre_counts, flat, group, dt = _prep(
        xp, pre_times, pre_counts, flat, group, n_pre=h_in * w_in * c_in
    )
    rows = xp.ascontiguousarray(flat.transpose(0, 2, 1))
    return pre_times, pre_counts, W.astype(dt), rows, group, dt, (h_in, w_in, c_in, k, c_out)


def conv_backward_with(
    xp, launch, pre_times, pre_counts, W, group, in_shape, post_times, post_counts, udot, phi,
    tau_s, reset, need_pre,
):  # fmt: skip
    """:func:`conv_backward` on array module ``xp`` with kernel launcher ``launch``."""
    pre_times, pre_counts, W, rows, group, dt, geo = _conv_inputs(
        xp, pre_times, pre_counts, W, group, in_shape
    )
    h_in, w_in, c_in, k, c_out = geo
    n_b, n_i, k_i = pre_times.shape
    n_o = (h_in - k + 1) * (w_in - k + 1) * c_out
    n_g = W.shape[0]
    post_times, post_counts, delta, p1, p2, inv_tau = _post_deltas(
        xp, launch, post_times, post_counts, udot, phi, n_b, n_o, dt, tau_s, reset
    )
    n_s = post_times.shape[2]
    order, gstart = _group_csr(xp, group, n_g)
    grad = xp.empty_like(W)
    _sample_memory(xp)
    geo_args = (np.int32(h_in), np.int32(w_in), np.int32(c_in), np.int32(k), np.int32(c_out),
                np.int32(k_i), np.int32(n_s), inv_tau)  # fmt: skip
    # fmt: off
    launch("conv_grad", dt, grad.size, pre_times, pre_counts, post_times, post_counts, p1, p2,
           order, gstart, *geo_args, grad)
    # fmt: on
    phi_pre = None
    # docs/backward.md §5 through every output whose field holds the spike, pre-update W
    if need_pre:
        phi_pre = xp.empty_like(pre_times)
        # fmt: off
        launch("conv_phi_pre", dt, n_b * n_i, pre_times, pre_counts, W, group, post_times,
               post_counts, p1, p2, *geo_args, phi_pre)
        # fmt: on
    return delta, grad, phi_pre


def pool_forward_with(xp, launch, pre_times, pre_counts, in_shape, size):
    """:func:`pool_forward` on array module ``xp`` with kernel launcher ``launch``."""
    h_in, w_in, c_in = (int(s) for s in in_shape)
    size = int(size)
    if size < 1 or size > min(h_in, w_in):
        raise ValueError(f"pool size must be in [1, {min(h_in, w_in)}], got {size}")
    pre_times = xp.ascontiguousarray(xp.asarray(pre_times))
    dt = np.dtype(pre_times.dtype)
    if dt not in _SUFFIX:
        raise TypeError(f"pre_times must be float32 or float64, got {dt}")
    pre_counts = bounded_counts(pre_times, pre_counts, "pre_")  # the kernels index by them
    pre_counts = xp.ascontiguousarray(xp.asarray(pre_counts), dtype=np.int32)
    n_b, n_i, k_i = pre_times.shape
    if n_i != h_in * w_in * c_in or pre_counts.shape != (n_b, n_i):
        raise ValueError(
            f"pre_times has shape {pre_times.shape}, expected [B, {h_in * w_in * c_in}, K]"
        )
    n_o = (h_in // size) * (w_in // size) * c_in
    n_s = size * size * k_i
    out_t = xp.empty((n_b, n_o, n_s), dtype=dt)
    out_c = xp.empty((n_b, n_o), dtype=np.int32)
    src = xp.empty((n_b, n_o, n_s), dtype=np.int32)
    # fmt: off
    launch("pool_forward", dt, n_b * n_o, pre_times, pre_counts, np.int32(h_in), np.int32(w_in),
           np.int32(c_in), np.int32(k_i), np.int32(size), out_t, out_c, src)
    # fmt: on
    return out_t, out_c, src


def pool_backward_with(xp, launch, phi, counts, source, pre_shape):
    """:func:`pool_backward` on array module ``xp`` with kernel launcher ``launch``."""
    phi = xp.ascontiguousarray(xp.asarray(phi))
    dt = np.dtype(phi.dtype)
    if phi.shape != source.shape or counts.shape != phi.shape[:2]:
        raise ValueError(f"phi has shape {phi.shape}, expected {source.shape}")
    n_b, n_o, n_s = phi.shape
    phi_pre = xp.zeros(tuple(pre_shape), dtype=dt)
    # fmt: off
    launch("pool_backward", dt, n_b * n_o, phi, xp.ascontiguousarray(counts, dtype=np.int32),
           xp.ascontiguousarray(source), np.int64(n_o), np.int64(pre_shape[1] * pre_shape[2]),
           np.int32(n_s), phi_pre)
    # fmt: on
    return phi_pre


# --------------------------------------------------------------------------------------------
# Public API (the same as engine.cpu)
# --------------------------------------------------------------------------------------------
def dense_forward(pre_times, pre_counts, W, group, tau_s, theta, reset, n_max, t_max):
    """Exact spike times of a dense layer (docs/forward.md §5) on the GPU.

    Returns CuPy arrays ``(times [B, No, n_max] +inf padded, counts [B, No] int32,
    udot [B, No, n_max])``, ``udot`` the membrane slope at each spike (0 in empty slots).
    ``group`` values must lie in ``[0, G)``; they are checked only for a NumPy ``group``.
    """
    return forward_with(
        xp_for("gpu"),
        cuda_launch,
        pre_times,
        pre_counts,
        W,
        group,
        tau_s,
        theta,
        reset,
        n_max,
        t_max,
    )


def dense_backward(
    pre_times, pre_counts, W, group, post_times, post_counts, udot, phi, tau_s, reset, need_pre
):
    """BATS backward of a dense layer (docs/backward.md §6) on the GPU.

    ``phi`` [B, No, S] is dL/dt of each post spike (never mutated; empty slots ignored). Returns
    ``(delta [B, No, S], grad [G, No, Ni] summed over the samples of each group,
    phi_pre [B, Ni, Ki] or None)``.
    """
    return backward_with(
        xp_for("gpu"),
        cuda_launch,
        pre_times,
        pre_counts,
        W,
        group,
        post_times,
        post_counts,
        udot,
        phi,
        tau_s,
        reset,
        need_pre,
    )


def conv_forward(pre_times, pre_counts, W, group, in_shape, tau_s, theta, reset, n_max, t_max):
    """Exact spike times of a conv layer (docs/conv-pool.md §2) on the GPU; as engine.cpu's."""
    return conv_forward_with(
        xp_for("gpu"), cuda_launch, pre_times, pre_counts, W, group, in_shape, tau_s, theta,
        reset, n_max, t_max,
    )  # fmt: skip


def conv_backward(
    pre_times, pre_counts, W, group, in_shape, post_times, post_counts, udot, phi, tau_s, reset,
    need_pre,
):  # fmt: skip
    """BATS backward of a conv layer (docs/conv-pool.md §2, docs/backward.md §6) on the GPU; as
    engine.cpu's."""
    return conv_backward_with(
        xp_for("gpu"), cuda_launch, pre_times, pre_counts, W, group, in_shape, post_times,
        post_counts, udot, phi, tau_s, reset, need_pre,
    )  # fmt: skip


def pool_forward(pre_times, pre_counts, in_shape, size):
    """Spike-aggregation pooling (docs/conv-pool.md §3) on the GPU; as engine.cpu's."""
    return pool_forward_with(xp_for("gpu"), cuda_launch, pre_times, pre_counts, in_shape, size)


def pool_backward(phi, counts, source, pre_shape):
    """Pooling errors routed to their sources (docs/conv-pool.md §3) on the GPU; as engine.cpu's."""
    return pool_backward_with(xp_for("gpu"), cuda_launch, phi, counts, source, pre_shape)


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------
def _sample_memory(xp) -> None:
    """Record the device memory held by CuPy's pool (temporaries alive at launch time)."""
    global _peak_bytes
    if xp is not np:
        _peak_bytes = max(_peak_bytes, int(xp.get_default_memory_pool().total_bytes()))


def peak_memory_bytes() -> int:
    """Peak bytes held by CuPy's default memory pool since :func:`reset_peak_memory`.

    The pool only grows until its blocks are freed, so its size now, together with the samples
    taken at each launch and before each :func:`free_gpu_memory`, is the peak.
    """
    _sample_memory(xp_for("gpu"))
    return _peak_bytes


def reset_peak_memory() -> None:
    """Free the pool's cached blocks and start a new peak from the memory in use now."""
    global _peak_bytes
    pool = xp_for("gpu").get_default_memory_pool()
    pool.free_all_blocks()
    _peak_bytes = int(pool.total_bytes())


def free_gpu_memory() -> None:
    """Return the cached blocks of CuPy's memory pools to the driver (call after a run)."""
    cp = xp_for("gpu")
    _sample_memory(cp)
    cp.get_default_memory_pool().free_all_blocks()
    cp.get_default_pinned_memory_pool().free_all_blocks()


__all__ = [
    "CUDA_DIR",
    "backward_with",
    "conv_backward",
    "conv_backward_with",
    "conv_forward",
    "conv_forward_with",
    "cuda_launch",
    "dense_backward",
    "dense_forward",
    "forward_with",
    "free_gpu_memory",
    "kernel_source",
    "peak_memory_bytes",
    "pool_backward",
    "pool_backward_with",
    "pool_forward",
    "pool_forward_with",
    "reset_peak_memory",
    "smoke_test",
]
