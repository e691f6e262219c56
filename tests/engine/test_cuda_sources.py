"""The CUDA sources without a GPU: nvcc compiles them, and a host build of the same per-thread
functions (neuron.cuh, dense.cuh, conv.cuh, pool.cuh, driven by engine/gpu.py's own drivers on
NumPy) matches engine/cpu.py."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from batscope.engine import cpu, gpu
from test_float32_robust import coincident_probes, inputs, unambiguous

CUDA_DIR = gpu.CUDA_DIR
HARNESS = Path(__file__).with_name("cuda_host_harness.cpp")
KERNELS = ("merge", "forward", "delta", "grad", "phi_pre",  # dense.cu
           "field", "conv_forward", "conv_grad", "conv_phi_pre",  # conv.cu
           "pool_forward", "pool_backward")  # pool.cu  # fmt: skip
ENTRIES = [f"bs_{k}_{s}" for k in KERNELS for s in ("f32", "f64")]


# ---------------------------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_nvcc_compiles_every_cu(arch, tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    sources = sorted(CUDA_DIR.glob("*.cu"))
    assert sources, f"no .cu files in {CUDA_DIR}"
    entries = set()
    for src in sources:
        ptx = tmp_path / f"{src.stem}.ptx"
        res = subprocess.run(
            [
                nvcc,
                "--ptx",
                f"-arch={arch}",
                "--fmad=false",
                "-Werror",
                "all-warnings",
                "-o",
                str(ptx),
                str(src),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert res.returncode == 0, res.stderr
        entries |= set(re.findall(r"\.entry\s+(\w+)\(", ptx.read_text()))
    assert set(ENTRIES) <= entries


def test_float32_kernels_keep_fp64_to_forward_bookkeeping(tmp_path):
    """One precision policy (docs/implementation.md §2): the float32 kernels compute in float32. The
    only FP64 is in the forward, in registers: the event-time bookkeeping and the root of the rare
    candidates that pass the float32 pre-test (dense.cuh, "Precision"); no FP64 array traffic."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    bodies = {}
    for name in gpu.CUDA_SOURCES:
        ptx_path = tmp_path / f"{name}.ptx"
        cmd = [nvcc, "--ptx", "-arch=sm_90", "-o", str(ptx_path), str(CUDA_DIR / name)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)
        ptx = ptx_path.read_text()
        bodies |= {b.split("(")[0]: b for b in re.split(r"\.entry\s+", ptx)[1:]}
    f32 = {k: b for k, b in bodies.items() if k.endswith("_f32")}
    assert sorted(f32) == sorted(f"bs_{k}_f32" for k in KERNELS)
    forwards = ("bs_forward_f32", "bs_conv_forward_f32")  # one neuron core, two connectivities
    for name, body in f32.items():
        if name not in forwards:
            assert ".f64" not in body, name
    for name in forwards:
        assert "sqrt.rn.f32" in f32[name]  # the per-input pre-test is float32
        assert not re.search(r"(ld|st)\.global\.f64", f32[name])


def test_nvrtc_compiles_inlined_source():
    """The runtime path: CuPy's NVRTC compiles gpu.kernel_source() (no host headers there)."""
    pytest.importorskip("cupy", reason="CuPy is not installed")
    from cupy.cuda import nvrtc  # noqa: PLC0415

    try:
        prog = nvrtc.createProgram(gpu.kernel_source(), "dense.cu", [], [])
    except Exception as exc:  # libnvrtc missing
        pytest.skip(f"NVRTC is unavailable: {exc}")
    try:
        nvrtc.compileProgram(prog, [*gpu.NVRTC_OPTIONS, "-arch=compute_90"])
    except Exception as exc:
        pytest.fail(f"NVRTC failed: {exc}\n{nvrtc.getProgramLog(prog)}")
    ptx = nvrtc.getPTX(prog)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert set(ENTRIES) <= set(re.findall(r"\.entry\s+(\w+)\(", ptx))


# ---------------------------------------------------------------------------------------------
# Host build of the per-thread functions
# ---------------------------------------------------------------------------------------------
_CTYPES = {
    np.dtype(np.int64): ctypes.c_longlong,
    np.dtype(np.int32): ctypes.c_int,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}


@pytest.fixture(scope="module")
def host_launch(tmp_path_factory):
    """A ``launch`` for gpu.forward_with/backward_with that runs dense.cuh on the CPU."""
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        if os.environ.get("BATSCOPE_REQUIRE_GXX") == "1":  # set by .ci/run: CI's GPU-path check
            pytest.fail("no C++ compiler (g++) on PATH, and BATSCOPE_REQUIRE_GXX=1")
        pytest.skip("no C++ compiler (g++) on PATH")
    lib_path = tmp_path_factory.mktemp("cuda_host") / "libdense_host.so"
    cmd = [cxx, "-O2", "-std=c++17", "-shared", "-fPIC", "-Wall", "-Werror", f"-I{CUDA_DIR}",
           str(HARNESS), "-o", str(lib_path)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lib = ctypes.CDLL(str(lib_path))

    def launch(name, dtype, n_threads, *args):
        fn = getattr(lib, f"host_{name}_{'f32' if np.dtype(dtype) == np.float32 else 'f64'}")
        fn.restype = None
        cargs = [ctypes.c_longlong(n_threads)]
        for a in args:
            if isinstance(a, np.ndarray):
                assert a.flags.c_contiguous and a.dtype in _CTYPES, (name, a.dtype)
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            else:
                cargs.append(_CTYPES[np.dtype(type(a))](a))  # exact scalar types only
        fn(*cargs)

    return launch


def _inputs(rng, n_b, n_i, k_i, dtype, t_hi=0.5, quantum=None, rate=0.8):
    """Random sorted input trains; ``quantum`` rounds times to a grid (simultaneous inputs)."""
    t = rng.uniform(0.0, t_hi, size=(n_b, n_i, k_i))
    if quantum:
        t = np.round(t / quantum) * quantum
    counts = rng.binomial(k_i, rate, size=(n_b, n_i)).astype(np.int32)
    t = np.sort(t, axis=2)
    t[np.arange(k_i)[None, None, :] >= counts[..., None]] = np.inf
    return t.astype(dtype), counts


CASES = {
    # name: n_b, n_i, k_i, n_o, n_g, tau_s, theta, reset, n_max, t_max, w_mean, w_std, quantum
    "method_6_7": (4, 6, 5, 3, 1, 0.1, 0.1, 0.2, 20, 1.0, 0.8, 0.6, None),
    "groups": (9, 30, 3, 17, 3, 0.05, 0.05, 0.05, 8, 1.0, 0.6, 0.8, None),
    "saturation": (5, 12, 4, 10, 1, 0.1, 0.02, 0.02, 2, 1.0, 3.0, 0.5, None),
    "t_max_cut": (6, 20, 3, 9, 2, 0.1, 0.05, 0.1, 10, 0.21, 1.0, 0.8, None),
    "simultaneous": (6, 25, 2, 11, 1, 0.1, 0.05, 0.05, 6, 1.0, 0.8, 0.8, 0.02),
}


def _network(case, dtype, seed):
    n_b, n_i, k_i, n_o, n_g, tau_s, theta, reset, n_max, t_max, wm, ws, quantum = CASES[case]
    rng = np.random.default_rng(seed)
    pre_t, pre_c = _inputs(rng, n_b, n_i, k_i, dtype, quantum=quantum)
    pre_t[0], pre_c[0] = np.inf, 0  # a silent sample (docs/forward.md §6.8)
    W = rng.normal(wm, ws, size=(n_g, n_o, n_i)).astype(dtype)
    group = rng.integers(0, n_g, size=n_b).astype(np.int32)
    return pre_t, pre_c, W, group, dict(tau_s=tau_s, theta=theta, reset=reset), n_max, t_max


def _tol(dtype):
    return 1e-12 if np.dtype(dtype) == np.float64 else 1e-5


def _close(actual, desired, dtype, what):
    tol = _tol(dtype)
    finite = np.abs(desired[np.isfinite(desired)])
    scale = max(1.0, float(np.max(finite, initial=0.0)))
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * scale, err_msg=what)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_host_build_matches_cpu(case, dtype, host_launch):
    pre_t, pre_c, W, group, p, n_max, t_max = _network(case, dtype, seed=7)
    fwd_args = (pre_t, pre_c, W, group, p["tau_s"], p["theta"], p["reset"], n_max, t_max)
    ref_t, ref_c, ref_ud = cpu.dense_forward(*fwd_args)
    out_t, out_c, out_ud = gpu.forward_with(np, host_launch, *fwd_args)
    np.testing.assert_array_equal(out_c, ref_c)
    assert ref_c.sum() > 0, "degenerate case: no output spikes"
    assert np.all(np.isinf(out_t) == np.isinf(ref_t))
    _close(out_t, ref_t, dtype, "spike times")
    _close(out_ud, ref_ud, dtype, "udot")
    assert np.all(ref_t[0] == np.inf) and np.all(out_c[0] == 0)  # the silent sample
    if case == "saturation":
        assert np.any(ref_c == n_max)
    if case == "t_max_cut":
        assert np.all(ref_t[np.isfinite(ref_t)] <= t_max)

    rng = np.random.default_rng(11)
    phi = rng.normal(size=ref_t.shape).astype(dtype)
    phi[np.isinf(ref_t)] = np.nan  # empty slots must be ignored
    phi_before = phi.copy()
    bwd_args = (pre_t, pre_c, W, group, ref_t, ref_c, ref_ud, phi, p["tau_s"], p["reset"], True)
    ref_d, ref_g, ref_p = cpu.dense_backward(*bwd_args)
    out_d, out_g, out_p = gpu.backward_with(np, host_launch, *bwd_args)
    np.testing.assert_array_equal(phi, phi_before)  # never mutated
    assert out_g.shape == W.shape and out_p.shape == pre_t.shape
    _close(out_d, ref_d, dtype, "delta")
    _close(out_g, ref_g, dtype, "grad")
    _close(out_p, ref_p, dtype, "phi_pre")
    assert np.all(out_p[np.isinf(pre_t)] == 0)
    assert np.abs(ref_g).max() > 0

    no_pre = gpu.backward_with(np, host_launch, *bwd_args[:-1], False)
    assert no_pre[2] is None
    np.testing.assert_array_equal(no_pre[1], out_g)


def test_host_build_grad_is_a_sum_over_each_group(host_launch):
    """grad[g] equals the sum of single-sample gradients of the samples in group g."""
    pre_t, pre_c, W, group, p, n_max, t_max = _network("groups", np.float64, seed=3)
    args = (p["tau_s"], p["theta"], p["reset"], n_max, t_max)
    t, c, ud = gpu.forward_with(np, host_launch, pre_t, pre_c, W, group, *args)
    phi = np.random.default_rng(5).normal(size=t.shape)
    _, grad, _ = gpu.backward_with(
        np, host_launch, pre_t, pre_c, W, group, t, c, ud, phi, p["tau_s"], p["reset"], False
    )
    expect = np.zeros_like(W)
    for b in range(len(group)):
        g1 = np.zeros(1, dtype=np.int32)
        sl = slice(b, b + 1)
        _, gb, _ = gpu.backward_with(
            np, host_launch, pre_t[sl], pre_c[sl], W[group[b] : group[b] + 1], g1, t[sl], c[sl],
            ud[sl], phi[sl], p["tau_s"], p["reset"], False,
        )  # fmt: skip
        expect[group[b]] += gb[0]
    np.testing.assert_allclose(grad, expect, rtol=1e-12, atol=1e-12 * np.abs(expect).max())


# ---------------------------------------------------------------------------------------------
# float32 forward where rounding decides: the host build rounds as engine.cpu does
# ---------------------------------------------------------------------------------------------
def _same_forward(out, ref):
    """Equal counts, times within 1e-6 s, u_dot within 1e-5 relative (in practice bitwise: the
    same float32/float64 operations, and g++ and Numba both call the C library's exp/log)."""
    np.testing.assert_array_equal(out[1], ref[1])
    np.testing.assert_array_equal(np.isinf(out[0]), np.isinf(ref[0]))
    fin = np.isfinite(ref[0])
    assert np.abs(out[0][fin] - ref[0][fin]).max(initial=0.0) <= 1e-6
    np.testing.assert_allclose(out[2], ref[2], rtol=1e-5, atol=1e-6)


def test_host_build_keeps_the_reported_lost_spikes(host_launch):
    """tests/gpu's grid_stride case, float32, seed 7: the host build lost every spike after a
    crossing that coincided with an input in these samples (sample 723, neuron 213: 1 spike,
    float64: 4; docs/forward.md §6.4)."""
    rng = np.random.default_rng(7)
    t64, counts = _inputs(rng, 5000, 20, 2, np.float64)
    w64 = rng.normal(0.6, 0.8, size=(1, 300, 20))
    samples = [54, 723, 1028, 2082, 2850, 3589, 4100, 4244, 4574, 4912]
    args = (t64[samples], counts[samples], w64, np.zeros(len(samples), np.int32))
    params = (0.1, 0.05, 0.05, 4, 1.0)
    f32 = (args[0].astype(np.float32), args[1], w64.astype(np.float32), args[3])
    out = gpu.forward_with(np, host_launch, *f32, *params)
    _same_forward(out, cpu.dense_forward(*f32, *params))
    ref = cpu.dense_forward(*args, *params)
    np.testing.assert_array_equal(out[1], ref[1])
    assert out[1][samples.index(723), 213] == 4


@pytest.mark.parametrize("w_probe", [None, 0.0, 0.3])
def test_host_build_long_float32_run_matches_cpu(w_probe, host_launch):
    """100 tau_s in float32, ~180 spikes per neuron, float32 input times ~1e-6 s apart; with
    ``w_probe``, inputs of that weight on every crossing. The previous forward (float32 event
    times and roots) differed from engine.cpu here by up to 1e-4 s and lost spikes. Weighted
    probes make a spike's u_dot say on which side of a coincident input it was placed (a spike
    clamped to the next input excludes it, one after it includes its weight)."""
    rng = np.random.default_rng(5)
    tau_s = 0.1
    times, counts = inputs(rng, 4, 20, 40, 100 * tau_s)
    w = rng.normal(0.1, 0.8, (1, 24, 20)).astype(np.float32)
    params = (tau_s, 0.1, 0.05, 300, 100 * tau_s)
    if w_probe is not None:
        times, counts, w = coincident_probes(times, counts, w, params, w_probe)
    group = np.zeros(len(times), np.int32)
    out = gpu.forward_with(np, host_launch, times, counts, w, group, *params)
    _same_forward(out, cpu.dense_forward(times, counts, w, group, *params))
    r64 = cpu.dense_forward(times.astype(np.float64), counts, w.astype(np.float64), group, *params)
    ok = unambiguous((r64, out), times, w, params)
    assert ok.mean() >= 0.8 and r64[1][ok].sum() >= 10_000
    np.testing.assert_array_equal(out[1][ok], r64[1][ok])
    fin = np.isfinite(r64[0]) & ok[..., None]
    assert np.abs(out[0][fin] - r64[0][fin]).max() <= 1e-4


def test_smoke_test_passes_on_host_build(host_launch):
    gpu.smoke_test(np, host_launch)  # the self-test that backend's GPU detection runs


def test_bad_group_from_host_is_rejected(host_launch):
    pre_t, pre_c, W, group, p, n_max, t_max = _network("groups", np.float64, seed=1)
    group[0] = W.shape[0]
    with pytest.raises(ValueError, match="group"):
        gpu.forward_with(np, host_launch, pre_t, pre_c, W, group, 0.1, 0.1, 0.1, 3, 1.0)


def test_network_on_the_gpu_drivers_matches_cpu(host_launch):
    """Network drives gpu.py's drivers (here on NumPy + the host build) exactly as engine.cpu."""
    from batscope.engine.init import Normal
    from batscope.engine.layers import Dense
    from batscope.engine.network import Network
    from batscope.engine.spikes import SpikeTrains

    layers = [
        Dense(15, 0.1, 0.1, reset=0.2, n_max=8, init=Normal(0.8, 0.6)),
        Dense(4, 0.1, 0.1, n_max=5, init=Normal(1.0, 0.6)),
    ]
    t, c = _inputs(np.random.default_rng(5), 8, 20, 3, np.float64)
    x = SpikeTrains(t, c)
    res = []
    for host_gpu in (False, True):
        net = Network(20, layers, backend="cpu", dtype="float64", seed=1)
        if host_gpu:
            net._kernels = SimpleNamespace(
                dense_forward=partial(gpu.forward_with, np, host_launch),
                dense_backward=partial(gpu.backward_with, np, host_launch),
            )
        out = net.forward(x, 1.0)
        phi = np.where(np.isfinite(out[-1].times), 1.0, 0.0)
        grads = net.backward(phi, input_errors=True)
        comps = [a for comp in net.error_components for a in comp]
        res.append([*(o.times for o in out), *(o.counts for o in out), *grads, *comps,
                    net.input_errors])  # fmt: skip
    assert res[0][2].sum() > 0 and res[0][3].sum() > 0
    for a, b in zip(*res, strict=True):
        _close(b, a, np.float64, "network")


# ---------------------------------------------------------------------------------------------
# Conv2D and Pool2D (docs/conv-pool.md): the host build against engine.cpu
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_host_build_conv_and_pool_match_cpu(dtype, host_launch):
    rng = np.random.default_rng(3)
    shape = (7, 6, 2)
    times, counts = _inputs(rng, 5, 84, 3, dtype, quantum=0.01)  # coincident inputs too
    times[0], counts[0] = np.inf, 0  # a silent sample
    w = rng.normal(0.2, 0.8, (2, 3, 3, 3, 2)).astype(dtype)
    group = np.array([0, 1, 1, 0, 1], np.int32)
    args = (times, counts, w, group, shape, 0.1, 0.1, 0.2, 6, 1.0)
    ref = cpu.conv_forward(*args)
    out = gpu.conv_forward_with(np, host_launch, *args)
    np.testing.assert_array_equal(out[1], ref[1])
    assert ref[1].sum() > 200 and (ref[1] == 6).any()
    np.testing.assert_array_equal(np.isinf(out[0]), np.isinf(ref[0]))
    _close(out[0], ref[0], dtype, "conv spike times")
    _close(out[2], ref[2], dtype, "conv udot")

    phi = rng.normal(size=ref[0].shape).astype(dtype)
    phi[np.isinf(ref[0])] = 0
    bwd = (times, counts, w, group, shape, *ref, phi, 0.1, 0.2, True)
    rd, rg, rp = cpu.conv_backward(*bwd)
    od, og, op = gpu.conv_backward_with(np, host_launch, *bwd)
    assert og.shape == w.shape and np.abs(rg).max() > 0
    _close(od, rd, dtype, "conv delta")
    _close(og, rg, dtype, "conv grad")
    _close(op, rp, dtype, "conv phi_pre")

    pool_shape = (5, 4, 3)
    rt, rc, rs = cpu.pool_forward(ref[0], ref[1], pool_shape, 2)
    ot, oc, os_ = gpu.pool_forward_with(np, host_launch, ref[0], ref[1], pool_shape, 2)
    np.testing.assert_array_equal(ot, rt)
    np.testing.assert_array_equal(oc, rc)
    np.testing.assert_array_equal(os_, rs)
    phi_pool = np.where(np.isfinite(rt), rng.normal(size=rt.shape), 0).astype(dtype)
    np.testing.assert_array_equal(
        gpu.pool_backward_with(np, host_launch, phi_pool, rc, rs, ref[0].shape),
        cpu.pool_backward(phi_pool, rc, rs, ref[0].shape),
    )


def test_conv_network_on_the_gpu_drivers_matches_cpu(host_launch):
    """A conv-pool-dense Network on gpu.py's drivers (NumPy + host build) as on engine.cpu."""
    from batscope.engine import Conv2D, Dense, Network, Normal, Pool2D, SpikeTrains

    layers = [
        Conv2D(3, 3, 0.1, 0.1, n_max=3, reset=0.2, init=Normal(0.5, 0.5)),
        Pool2D(2),
        Dense(4, 0.1, 0.1, n_max=5, init=Normal(0.4, 0.4)),
    ]
    t, c = _inputs(np.random.default_rng(2), 4, 81, 2, np.float64)
    x = SpikeTrains(t, c)
    res = []
    for host_gpu in (False, True):
        net = Network(input_shape=(9, 9, 1), layers=layers, dtype="float64", seed=1)
        if host_gpu:
            net._kernels = SimpleNamespace(
                **{
                    name: partial(getattr(gpu, f"{name}_with"), np, host_launch)
                    for name in ("conv_forward", "conv_backward", "pool_forward", "pool_backward")
                },
                dense_forward=partial(gpu.forward_with, np, host_launch),
                dense_backward=partial(gpu.backward_with, np, host_launch),
            )
        out = net.forward(x, 1.0)
        phi = np.where(np.isfinite(out[-1].times), 1.0, 0.0)
        grads = net.backward(phi, input_errors=True)
        comps = [a for comp in net.error_components for a in comp]
        res.append([*(o.times for o in out), *(o.counts for o in out), *grads, *comps,
                    net.input_errors])  # fmt: skip
    assert all(o.sum() > 0 for o in res[0][3:6])
    for a, b in zip(*res, strict=True):
        _close(b, a, np.float64, "network")
