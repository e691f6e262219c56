"""The CUDA sources without a GPU: nvcc compiles them, and a host build of the same per-thread
functions (dense.cuh, driven by engine/gpu.py's own drivers on NumPy) matches engine/cpu.py."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from batscope.engine import cpu, gpu

CUDA_DIR = gpu.CUDA_DIR
HARNESS = Path(__file__).with_name("cuda_host_harness.cpp")
KERNELS = ("merge", "forward", "delta", "grad", "phi_pre")
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


def test_float32_kernels_have_no_fp64(tmp_path):
    """One precision policy (method.md §14.2): the float32 variants never touch FP64."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc is not on PATH")
    ptx_path = tmp_path / "dense.ptx"
    cmd = [nvcc, "--ptx", "-arch=sm_90", "-o", str(ptx_path), str(CUDA_DIR / "dense.cu")]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    ptx = ptx_path.read_text()
    bodies = re.split(r"\.entry\s+", ptx)[1:]
    f32 = [b for b in bodies if re.match(r"bs_\w+_f32\(", b)]
    assert len(f32) == len(KERNELS)
    for body in f32:
        assert ".f64" not in body, body.split("(")[0]


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
    pre_t[0], pre_c[0] = np.inf, 0  # a silent sample (method.md §4.8)
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


def test_smoke_test_passes_on_host_build(host_launch):
    gpu.smoke_test(np, host_launch)  # the self-test that backend's GPU detection runs


def test_t_max_rounds_down_in_float32():
    t = gpu._below(0.1, np.dtype(np.float32))
    assert t.dtype == np.float32 and float(t) <= 0.1
    assert float(np.nextafter(t, np.float32(np.inf))) > 0.1
    assert gpu._below(np.inf, np.dtype(np.float32)) == np.inf
    assert gpu._below(1e300, np.dtype(np.float32)) == np.finfo(np.float32).max
    assert gpu._below(0.1, np.dtype(np.float64)) == 0.1


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
