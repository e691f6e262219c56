"""GPU backend vs the CPU backend (needs CuPy and a CUDA device; skipped otherwise).

Kernels on random networks and on real MNIST, finite differences in float64 on the GPU, and the
whole Network API (losses, optimisers, membrane traces, error components) with backend="gpu".
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from batscope.engine import cpu, gpu
from batscope.engine.backend import resolve_backend, to_numpy, xp_for
from batscope.engine.bench import build_network
from batscope.engine.init import Normal
from batscope.engine.layers import Dense
from batscope.engine.losses import SpikeCountClass, SpikeTime, TTFSCrossEntropy
from batscope.engine.network import Network
from batscope.engine.optim import SGD, Adam
from batscope.engine.spikes import SpikeTrains

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]
# times: float64 agrees to rounding; float32 to 1e-5 s (the brief); other arrays relative to max.
TOL = {np.float64: dict(t=1e-10, rel=1e-9), np.float32: dict(t=1e-5, rel=1e-4)}
DEVICE_MODULE = "cupy"


def _module_of(a) -> str:
    return type(a).__module__.split(".")[0]


@pytest.fixture(scope="module")
def cp():
    return xp_for("gpu")


def _close(actual, desired, tol, what):
    actual, desired = to_numpy(actual), to_numpy(desired)
    assert actual.shape == desired.shape, what
    fin = np.isfinite(desired)
    assert np.array_equal(fin, np.isfinite(actual)), f"{what}: different empty slots"
    scale = max(1.0, float(np.max(np.abs(desired[fin]), initial=0.0)))
    err = float(np.max(np.abs(actual[fin] - desired[fin]), initial=0.0))
    assert err <= tol * scale, f"{what}: max abs error {err:.3g} > {tol:g} * {scale:.3g}"


# A rounding δu of the membrane near threshold moves a crossing by δu·τ/u̇ (u̇ = du/d(t/τ), the
# slope the kernels keep per spike). The two backends round exp/log differently by an ulp, so a
# spike's time may differ by up to COND ulps of θ over its slope, beyond the flat tolerance:
# a near-grazing crossing (small u̇) is ill-conditioned in any float format.
COND = 1000


def _close_times(actual, desired, udot, theta, dtype, tol, what):
    """Spike times within ``tol + COND ε θ / u̇`` each (u̇ and θ of the reference side)."""
    actual, desired = to_numpy(actual), to_numpy(desired)
    assert actual.shape == desired.shape, what
    fin = np.isfinite(desired)
    assert np.array_equal(fin, np.isfinite(actual)), f"{what}: different empty slots"
    eps = float(np.finfo(dtype).eps)
    slope = np.abs(np.asarray(to_numpy(udot), dtype=float)[fin])
    allowed = tol + COND * eps * theta / np.maximum(slope, 1e-300)
    err = np.abs(actual[fin].astype(float) - desired[fin])
    worst = int(np.argmax(err - allowed)) if err.size else 0
    assert err.size == 0 or err[worst] <= allowed[worst], (
        f"{what}: error {err[worst]:.3g} > allowed {allowed[worst]:.3g} at slope u̇ = "
        f"{slope[worst]:.3g} (θ = {theta:g}); max error {err.max():.3g}"
    )


def _clear_of_inputs(t_a, t_b, pre_times, window=1e-5):
    """[B, No, S] mask of spikes that both backends emit with no input of their sample within
    ``window`` [s] of the span between the two times. u̇ jumps by w at an input, so where
    rounding puts the two crossings on either side of one, their slopes legitimately differ by
    that weight (tests/engine/test_float32_robust.py has the same effect against float64)."""
    ok = np.zeros(t_a.shape, dtype=bool)
    for b in range(t_a.shape[0]):
        ins = np.sort(pre_times[b].astype(float).ravel())
        ins = ins[np.isfinite(ins)]
        a, c = t_a[b].astype(float), t_b[b].astype(float)
        fin = np.isfinite(a) & np.isfinite(c)
        lo = np.where(fin, np.minimum(a, c), 0.0) - window
        hi = np.where(fin, np.maximum(a, c), 0.0) + window
        ok[b] = fin & (np.searchsorted(ins, hi) == np.searchsorted(ins, lo))
    return ok


def _same_counts(actual, desired, dtype, what):
    """Mask of equal counts. float64: all equal. float32: the arithmetic is the CPU's, operation
    by operation, but CUDA's exp/log differ from libm's by an ulp; where float32 rounding
    decides (a near-grazing crossing, or one within rounding of an inhibitory input) that can
    add or drop a spike. Crossings on an input time no longer lose spikes (dense.cuh)."""
    actual, desired = to_numpy(actual), to_numpy(desired)
    same = actual == desired
    allowed = 0 if dtype == np.float64 else max(2, desired.size // 10_000)
    assert (~same).sum() <= allowed, f"{what}: {(~same).sum()} of {same.size} counts differ"
    return same


def _inputs(rng, n_b, n_i, k_i, dtype, t_hi=0.5, quantum=None):
    t = rng.uniform(0.0, t_hi, size=(n_b, n_i, k_i))
    if quantum:
        t = np.round(t / quantum) * quantum
    counts = rng.binomial(k_i, 0.8, size=(n_b, n_i)).astype(np.int32)
    t = np.sort(t, axis=2)
    t[np.arange(k_i)[None, None, :] >= counts[..., None]] = np.inf
    return t.astype(dtype), counts


CASES = {
    # n_b, n_i, k_i, n_o, n_g, tau_s, theta, reset, n_max, t_max, w_mean, w_std, quantum
    "method_6_7": (4, 6, 5, 3, 1, 0.1, 0.1, 0.2, 20, 1.0, 0.8, 0.6, None),
    "groups": (9, 30, 3, 17, 3, 0.05, 0.05, 0.05, 8, 1.0, 0.6, 0.8, None),
    "saturation": (5, 12, 4, 10, 1, 0.1, 0.02, 0.02, 2, 1.0, 3.0, 0.5, None),
    "t_max_cut": (6, 20, 3, 9, 2, 0.1, 0.05, 0.1, 10, 0.21, 1.0, 0.8, None),
    "simultaneous": (6, 25, 2, 11, 1, 0.1, 0.05, 0.05, 6, 1.0, 0.8, 0.8, 0.02),
    # B * No = 1.5M threads: more than one grid (32 blocks of 256 per SM), so the stride loops
    "grid_stride": (5000, 20, 2, 300, 1, 0.1, 0.05, 0.05, 4, 1.0, 0.6, 0.8, None),
}


def _network(case, dtype, seed):
    n_b, n_i, k_i, n_o, n_g, tau_s, theta, reset, n_max, t_max, wm, ws, quantum = CASES[case]
    rng = np.random.default_rng(seed)
    pre_t, pre_c = _inputs(rng, n_b, n_i, k_i, dtype, quantum=quantum)
    pre_t[0], pre_c[0] = np.inf, 0
    W = rng.normal(wm, ws, size=(n_g, n_o, n_i)).astype(dtype)
    group = rng.integers(0, n_g, size=n_b).astype(np.int32)
    return pre_t, pre_c, W, group, (tau_s, theta, reset), n_max, t_max


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernels_match_cpu(case, dtype, cp):
    pre_t, pre_c, W, group, (tau_s, theta, reset), n_max, t_max = _network(case, dtype, 7)
    tol = TOL[dtype]
    ref = cpu.dense_forward(pre_t, pre_c, W, group, tau_s, theta, reset, n_max, t_max)
    dev = [cp.asarray(a) for a in (pre_t, pre_c, W, group)]
    out = gpu.dense_forward(*dev, tau_s, theta, reset, n_max, t_max)
    assert all(_module_of(a) == DEVICE_MODULE for a in out)
    assert out[1].dtype == np.int32 and out[0].dtype == dtype and out[2].dtype == dtype
    same = _same_counts(out[1], ref[1], dtype, "spike counts")
    assert ref[1].sum() > 0
    _close_times(to_numpy(out[0])[same], ref[0][same], ref[2][same], theta, dtype, tol["t"],
                 "spike times")  # fmt: skip
    if dtype == np.float64:
        _close(to_numpy(out[2])[same], ref[2][same], tol["rel"], "udot")
    else:
        clear = same[..., None] & _clear_of_inputs(to_numpy(out[0]), ref[0], pre_t)
        assert clear.sum() >= 0.9 * np.isfinite(ref[0][same]).sum()
        _close(to_numpy(out[2])[clear], ref[2][clear], tol["rel"], "udot")

    # backward on the CPU's forward result, so both sides see the same spikes
    phi = np.random.default_rng(11).normal(size=ref[0].shape).astype(dtype)
    phi[np.isinf(ref[0])] = np.nan  # ignored in empty slots
    rb = cpu.dense_backward(pre_t, pre_c, W, group, *ref, phi, tau_s, reset, True)
    phi_dev = cp.asarray(phi)
    ob = gpu.dense_backward(
        *dev, *(cp.asarray(a) for a in ref), phi_dev, tau_s, reset, True
    )  # fmt: skip
    np.testing.assert_array_equal(to_numpy(phi_dev), phi)  # not mutated
    for name, o, r in zip(("delta", "grad", "phi_pre"), ob, rb, strict=True):
        _close(o, r, tol["rel"], name)


def test_gpu_results_are_bitwise_deterministic(cp):
    pre_t, pre_c, W, group, (tau_s, theta, reset), n_max, t_max = _network("groups", np.float32, 2)
    dev = [cp.asarray(a) for a in (pre_t, pre_c, W, group)]
    runs = []
    for _ in range(2):
        f = gpu.dense_forward(*dev, tau_s, theta, reset, n_max, t_max)
        phi = cp.ones_like(f[0])
        b = gpu.dense_backward(*dev, *f, phi, tau_s, reset, True)
        runs.append([to_numpy(a) for a in (*f, *b)])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# float32 where rounding decides (docs/forward.md §6.4; tests/engine/test_float32_robust.py)
# ---------------------------------------------------------------------------------------------
def _robust():
    """tests/engine/test_float32_robust.py: its inputs, coincident probes and ambiguity mask."""
    path = ROOT / "tests" / "engine" / "test_float32_robust.py"
    spec = importlib.util.spec_from_file_location("float32_robust_helpers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_float32_reported_lost_spike(cp):
    """grid_stride, float32, seed 7: sample 723, neuron 213 fired 1 spike, float64 fires 4."""
    pre_t, pre_c, W, group, (tau_s, theta, reset), n_max, t_max = _network(
        "grid_stride", np.float32, 7
    )
    dev = [cp.asarray(a) for a in (pre_t, pre_c, W, group)]
    counts = to_numpy(gpu.dense_forward(*dev, tau_s, theta, reset, n_max, t_max)[1])
    assert counts[723, 213] == 4


@pytest.mark.parametrize("probes", [False, True])
def test_float32_long_run_and_coincident_inputs(probes, cp):
    """100 tau_s, ~180 spikes per neuron; with ``probes``, zero-weight inputs on every float64
    crossing. Unambiguous neurons fire exactly as in float64."""
    rb = _robust()
    rng = np.random.default_rng(5)
    tau_s = 0.1
    times, counts = rb.inputs(rng, 4, 20, 40, 100 * tau_s)
    w = rng.normal(0.1, 0.8, (1, 24, 20)).astype(np.float32)
    params = (tau_s, 0.1, 0.05, 300, 100 * tau_s)
    if probes:
        times, counts, w = rb.coincident_probes(times, counts, w, params, 0.0)
    group = np.zeros(len(times), np.int32)
    dev = [cp.asarray(a) for a in (times, counts, w, group)]
    out = [to_numpy(a) for a in gpu.dense_forward(*dev, *params)]
    ref = cpu.dense_forward(times, counts, w, group, *params)
    _same_counts(out[1], ref[1], np.float32, "spike counts vs CPU")
    r64 = cpu.dense_forward(times.astype(np.float64), counts, w.astype(np.float64), group, *params)
    ok = rb.unambiguous((r64, out), times, w, params)
    assert ok.mean() >= 0.8
    np.testing.assert_array_equal(out[1][ok], r64[1][ok])
    fin = np.isfinite(r64[0]) & ok[..., None]
    assert np.abs(out[0][fin] - r64[0][fin]).max() <= 1e-4


# ---------------------------------------------------------------------------------------------
# Real MNIST
# ---------------------------------------------------------------------------------------------
def _mnist(n):
    """``n`` real MNIST training images: the full set beside the checkout, else the sample."""
    from batscope.datasets import load_sample, read_idx

    for folder in (ROOT.parent / "shared" / "datasets" / "mnist", ROOT / "shared/datasets/mnist"):
        f = folder / "train-images-idx3-ubyte.gz"
        lab = folder / "train-labels-idx1-ubyte.gz"
        if f.is_file() and lab.is_file():
            return read_idx(f)[:n], read_idx(lab)[:n].astype(np.int64)
    images, labels = load_sample("mnist", "train")
    return images[:n], labels[:n]


def _mnist_net(backend, dtype):
    layers = [Dense(800, 0.13, 0.2, n_max=30), Dense(10, 0.13, 1.3, n_max=30)]
    return Network(784, layers, backend=backend, dtype=dtype, seed=3)


def _close_layer_times(net, k, og, oc, keep, dtype, tol):
    """Layer ``k``'s GPU times against the CPU's where ``keep``. A pool layer passes on its
    conv layer's spikes, so it gets that layer's slopes through its ``source`` slots."""
    layer, ud = net.layers[k], net.udot[k]
    if ud is None:  # pool: the slope of each selected presynaptic spike
        src = to_numpy(net._kept[k].source)
        ud = np.take_along_axis(to_numpy(net.udot[k - 1]).reshape(len(src), -1), src.reshape(
            len(src), -1), axis=1).reshape(src.shape)  # fmt: skip
        layer = net.layers[k - 1]
    times = (to_numpy(og.times)[keep], to_numpy(oc.times)[keep])
    _close_times(*times, to_numpy(ud)[keep], layer.theta, dtype, tol, f"layer {k} times")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mnist_batch_matches_cpu(dtype):
    from batscope.datasets import encode_ttfs

    images, labels = _mnist(50)
    inp = encode_ttfs(images, dtype=np.dtype(dtype).name)
    tol = TOL[dtype]
    nets = {b: _mnist_net(b, np.dtype(dtype).name) for b in ("cpu", "gpu")}
    outs = {b: n.forward(inp, 0.2) for b, n in nets.items()}
    upstream_same = np.ones(len(labels), dtype=bool)  # samples whose earlier layers all agree
    for k, (oc, og) in enumerate(zip(outs["cpu"], outs["gpu"], strict=True)):
        assert to_numpy(oc.counts).sum() > 0
        same = _same_counts(og.counts, oc.counts, dtype, f"layer {k} spike counts")
        keep = same & upstream_same[:, None]
        _close_layer_times(nets["cpu"], k, og, oc, keep, dtype, tol["t"])
        upstream_same &= same.all(axis=1)
    assert upstream_same.sum() >= 0.9 * len(labels)
    # gradients: the GPU backward fed with the CPU's forward spikes (kernel level, per layer)
    net = nets["cpu"]
    loss = SpikeCountClass(15, 3)
    phi = to_numpy(loss.errors(outs["cpu"][-1], labels))
    grads = net.backward(phi)
    group = np.zeros(len(labels), dtype=np.int32)
    pres = [net.inputs, *net.outputs[:-1]]
    for k in range(len(net.layers) - 1, -1, -1):
        layer, post = net.layers[k], net.outputs[k]
        args = (pres[k].times, pres[k].counts, net.weights[k][None], group, post.times,
                post.counts, net.udot[k], net.error_components[k].phi, layer.tau_s, layer.reset,
                k > 0)  # fmt: skip
        delta, grad, _ = gpu.dense_backward(*args)
        _close(grad[0], grads[k], tol["rel"], f"layer {k} weight gradient")
        _close(delta, net.error_components[k].delta, tol["rel"], f"layer {k} delta")


def test_mnist_network_float64_gradients_match_cpu():
    from batscope.datasets import encode_ttfs

    images, labels = _mnist(20)
    inp = encode_ttfs(images, dtype="float64")
    res = {}
    for b in ("cpu", "gpu"):
        net = _mnist_net(b, "float64")
        out = net.forward(inp, 0.2)
        grads = net.backward(TTFSCrossEntropy(0.005).errors(out[-1], labels), input_errors=True)
        res[b] = (grads, net.input_errors)
    for k, (gc, gg) in enumerate(zip(res["cpu"][0], res["gpu"][0], strict=True)):
        _close(gg, gc, 1e-9, f"layer {k} gradient")
    _close(res["gpu"][1], res["cpu"][1], 1e-9, "input errors")


# ---------------------------------------------------------------------------------------------
# Finite differences on the GPU, float64 (docs/backward.md §8)
# ---------------------------------------------------------------------------------------------
def _probe_value(net, x, r, t_max):
    """The linear probe L = sum r_jk t_jk (docs/backward.md §8) and every layer's counts."""
    t = to_numpy(net.forward(x, t_max)[-1].times)
    value = float((r * np.where(np.isfinite(t), t, 0.0)).sum())
    return value, [to_numpy(o.counts) for o in net.outputs]


@pytest.mark.parametrize("hidden", [False, True])
def test_finite_differences_float64_on_gpu(hidden):
    rng = np.random.default_rng(0)
    t_in, c_in = _inputs(rng, 1, 6, 5, np.float64)  # ~25 input spikes in [0, 0.5] s
    x = SpikeTrains(t_in, c_in)
    layers = [Dense(3, 0.1, 0.1, reset=0.2, n_max=20, init=Normal(0.8, 0.6))]
    if hidden:
        layers.insert(0, Dense(5, 0.1, 0.1, reset=0.2, n_max=20, init=Normal(0.8, 0.6)))
    net = Network(6, layers, backend="gpu", dtype="float64", seed=4)
    out = net.forward(x, 1.0)[-1]
    r = np.where(np.isfinite(to_numpy(out.times)), rng.standard_normal(out.times.shape), 0.0)
    grads = [to_numpy(g) for g in net.backward(r, input_errors=True)]
    dt_in = to_numpy(net.input_errors)
    base = [to_numpy(o.counts) for o in net.outputs]
    w0 = [to_numpy(w).copy() for w in net.weights]
    eps, compared = 1e-7, 0

    def fd(make):
        """Central difference of the probe; None when a spike count changes (a kink)."""
        vals = []
        for sign in (1.0, -1.0):
            v, counts = _probe_value(net, make(sign * eps), r, 1.0)
            if any((a != b).any() for a, b in zip(counts, base, strict=True)):
                return None
            vals.append(v)
        return (vals[0] - vals[1]) / (2 * eps)

    for li, g in enumerate(grads):
        for j, i in np.ndindex(g.shape):

            def with_weight(d, li=li, j=j, i=i):
                ws = [w.copy() for w in w0]
                ws[li][j, i] += d
                net.weights = ws
                return x

            f = fd(with_weight)
            if f is not None:
                compared += 1
                assert abs(g[j, i] - f) <= 1e-6 * max(1.0, abs(g[j, i])), (li, j, i, g[j, i], f)
    net.weights = w0
    for i, z in zip(*np.nonzero(np.isfinite(t_in[0])), strict=True):

        def with_time(d, i=i, z=z):
            t = t_in.copy()
            t[0, i, z] += d
            return SpikeTrains(t, c_in)

        f = fd(with_time)
        if f is not None:
            compared += 1
            a = dt_in[0, i, z]
            assert abs(a - f) <= 1e-6 * max(1.0, abs(a)), ("input", i, z, a, f)
    assert compared >= 20


# ---------------------------------------------------------------------------------------------
# The Network API on the GPU
# ---------------------------------------------------------------------------------------------
def _small_net(backend, dtype="float64"):
    layers = [
        Dense(15, 0.1, 0.1, reset=0.2, n_max=8, init=Normal(0.8, 0.6)),
        Dense(4, 0.1, 0.1, n_max=5, init=Normal(1.0, 0.6)),
    ]
    return Network(20, layers, backend=backend, dtype=dtype, seed=1)


def _small_batch(dtype="float64"):
    t, c = _inputs(np.random.default_rng(5), 8, 20, 3, np.dtype(dtype))
    return SpikeTrains(t, c)


@pytest.mark.parametrize("loss_name", ["count", "ttfs", "time"])
def test_network_losses_grads_and_components_match_cpu(loss_name):
    x = _small_batch()
    labels = np.arange(8, dtype=np.int64) % 4
    res = {}
    for b in ("cpu", "gpu"):
        net = _small_net(b)
        out = net.forward(x, 1.0)[-1]
        if loss_name == "count":
            loss, target = SpikeCountClass(4, 1), labels
        elif loss_name == "ttfs":
            loss, target = TTFSCrossEntropy(0.005), labels
        else:
            loss, target = SpikeTime(), np.where(np.isfinite(to_numpy(out.times)), 0.3, np.inf)
        value, errors = loss.loss_and_errors(out, target)
        assert _module_of(errors) == (DEVICE_MODULE if b == "gpu" else "numpy")
        grads = net.backward(errors, input_errors=True)
        res[b] = dict(
            value=to_numpy(value),
            grads=[to_numpy(g) for g in grads],
            comps=[[to_numpy(a) for a in c] for c in net.error_components],
            inp=to_numpy(net.input_errors),
            pred=to_numpy(loss.predict(out, "strict")),
            stats=net.stats(),
            saturation=net.saturation,
        )
    c, g = res["cpu"], res["gpu"]
    _close(g["value"], c["value"], 1e-9, "loss")
    np.testing.assert_array_equal(g["pred"], c["pred"])
    assert g["saturation"] == c["saturation"]
    for sc, sg in zip(c["stats"], g["stats"], strict=True):
        assert sc.keys() == sg.keys()
        for key in sc:
            np.testing.assert_allclose(sg[key], sc[key], rtol=1e-9, err_msg=key)
    for k in range(2):
        _close(g["grads"][k], c["grads"][k], 1e-9, f"grad {k}")
        for name, a, b in zip(("phi", "mu", "delta"), g["comps"][k], c["comps"][k], strict=True):
            _close(a, b, 1e-9, f"layer {k} {name}")
    _close(g["inp"], c["inp"], 1e-9, "input errors")


@pytest.mark.parametrize("opt_cls", [SGD, Adam])
def test_network_training_steps_match_cpu(opt_cls):
    x = _small_batch()
    labels = np.arange(8, dtype=np.int64) % 4
    final = {}
    for b in ("cpu", "gpu"):
        net = _small_net(b)
        opt = opt_cls(1e-3)
        for _ in range(3):
            out = net.forward(x, 1.0)[-1]
            grads = net.backward(SpikeCountClass(4, 1).errors(out, labels))
            opt.step(net.weights, [gr / x.batch_size for gr in grads])
        final[b] = [to_numpy(w) for w in net.weights]
        assert _module_of(net.weights[0]) == (DEVICE_MODULE if b == "gpu" else "numpy")
    for wc, wg in zip(final["cpu"], final["gpu"], strict=True):
        _close(wg, wc, 1e-9, "weights after 3 steps")


def test_network_membrane_traces_match_cpu():
    x = _small_batch()
    t = np.linspace(0.0, 1.0, 301)
    traces = {}
    for b in ("cpu", "gpu"):
        net = _small_net(b)
        net.forward(x, 1.0)
        traces[b] = [net.membrane(t, sample=s, layer=k) for s in (0, 3) for k in (0, 1)]
    for a, b in zip(traces["gpu"], traces["cpu"], strict=True):
        assert isinstance(a, np.ndarray)
        _close(a, b, 1e-9, "membrane")


def test_float32_network_on_gpu_and_auto_backend():
    assert resolve_backend("auto") == "gpu"
    net = Network(20, [Dense(6, 0.1, 0.1)], backend="auto", dtype="float32")
    out = net.forward(_small_batch("float32"), 1.0)[-1]
    assert net.backend == "gpu" and out.times.dtype == np.float32
    assert _module_of(out.times) == DEVICE_MODULE


def test_memory_helpers(cp):
    pre_t, pre_c, W, group, (tau_s, theta, reset), n_max, t_max = _network(
        "grid_stride", np.float64, 1
    )
    dev = [cp.asarray(a) for a in (pre_t, pre_c, W, group)]
    gpu.reset_peak_memory()
    start = gpu.peak_memory_bytes()
    out = gpu.dense_forward(*dev, tau_s, theta, reset, n_max, t_max)
    peak = gpu.peak_memory_bytes()
    assert peak - start >= 0.9 * sum(a.nbytes for a in out)  # outputs and merge temporaries
    pool = cp.get_default_memory_pool()
    del out
    held = pool.total_bytes()
    gpu.free_gpu_memory()
    assert pool.total_bytes() < held
    assert gpu.peak_memory_bytes() >= peak


def test_convergence_sweep_groups_match_cpu():
    """The batched Fig. 3 sweep: G = runs weight sets in one call (docs/training.md §4)."""
    from batscope.engine.convergence import SweepConfig, run_sweep

    kw = dict(means=(0.5, 1.5, 3.0), stds=(0.5, 2.0), repeats=16, epochs=15, seed=2)
    res = {b: run_sweep(SweepConfig(backend=b, **kw)) for b in ("cpu", "gpu")}
    same = res["gpu"].best == res["cpu"].best
    assert same.mean() >= 0.99, f"{(~same).sum()} of {same.size} runs differ"
    np.testing.assert_allclose(res["gpu"].accuracy, res["cpu"].accuracy, atol=0.05)


# ---------------------------------------------------------------------------------------------
# Conv2D and Pool2D (docs/conv-pool.md)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch", [6, 3000])  # 3000: more (sample, neuron) threads than a grid
def test_conv_and_pool_kernels_match_cpu(dtype, batch, cp):
    rng = np.random.default_rng(4)
    shape = (9, 8, 2)
    pre_t, pre_c = _inputs(rng, batch, 144, 2, dtype, quantum=0.01)
    pre_t[0], pre_c[0] = np.inf, 0
    w = rng.normal(0.2, 0.8, (2, 4, 3, 3, 2)).astype(dtype)
    group = rng.integers(0, 2, size=batch).astype(np.int32)
    tol = TOL[dtype]
    args = (shape, 0.1, 0.1, 0.2, 5, 1.0)
    ref = cpu.conv_forward(pre_t, pre_c, w, group, *args)
    dev = [cp.asarray(a) for a in (pre_t, pre_c, w, group)]
    out = gpu.conv_forward(*dev, *args)
    assert _module_of(out[0]) == DEVICE_MODULE
    same = _same_counts(out[1], ref[1], dtype, "conv counts")
    assert ref[1].sum() > 100 * batch
    theta = args[2]
    _close_times(to_numpy(out[0])[same], ref[0][same], ref[2][same], theta, dtype, tol["t"],
                 "conv times")  # fmt: skip
    phi = np.where(np.isfinite(ref[0]), rng.normal(size=ref[0].shape), 0).astype(dtype)
    rb = cpu.conv_backward(pre_t, pre_c, w, group, shape, *ref, phi, 0.1, 0.2, True)
    ob = gpu.conv_backward(*dev, shape, *(cp.asarray(a) for a in ref), cp.asarray(phi), 0.1, 0.2,
                           True)  # fmt: skip
    for a, b, what in zip(ob, rb, ("delta", "grad", "phi_pre"), strict=True):
        _close(a, b, tol["rel"], f"conv {what}")
    pool_shape = (7, 6, 4)
    rp = cpu.pool_forward(ref[0], ref[1], pool_shape, 2)
    op = gpu.pool_forward(cp.asarray(ref[0]), cp.asarray(ref[1]), pool_shape, 2)
    for a, b in zip(op, rp, strict=True):
        np.testing.assert_array_equal(to_numpy(a), b)
    phi_p = np.where(np.isfinite(rp[0]), rng.normal(size=rp[0].shape), 0).astype(dtype)
    np.testing.assert_array_equal(
        to_numpy(gpu.pool_backward(cp.asarray(phi_p), op[1], op[2], ref[0].shape)),
        cpu.pool_backward(phi_p, rp[1], rp[2], ref[0].shape),
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_net3_mnist_batch_matches_cpu(dtype):
    """The paper's Net3 on real MNIST: every layer's spikes, then the gradients and input
    errors with the GPU fed the same forward (float64: whole network)."""
    from batscope.datasets import encode_ttfs

    images, labels = _mnist(20)
    inp = encode_ttfs(images, dtype=np.dtype(dtype).name)
    tol = TOL[dtype]
    nets = {b: build_network("net3", b, np.dtype(dtype).name, seed=3)[0] for b in ("cpu", "gpu")}
    outs = {b: n.forward(inp, 0.2) for b, n in nets.items()}
    upstream_same = np.ones(len(labels), dtype=bool)
    for k, (oc, og) in enumerate(zip(outs["cpu"], outs["gpu"], strict=True)):
        assert to_numpy(oc.counts).sum() > 0
        same = _same_counts(og.counts, oc.counts, dtype, f"layer {k} spike counts")
        keep = same & upstream_same[:, None]
        _close_layer_times(nets["cpu"], k, og, oc, keep, dtype, tol["t"])
        upstream_same &= same.all(axis=1)
    if dtype != np.float64:
        return
    loss = SpikeCountClass(30, 3)
    grads = {}
    for b, net in nets.items():
        g = net.backward(loss.errors(outs[b][-1], net.xp.asarray(labels)), input_errors=True)
        grads[b] = [*g, net.input_errors, *(c.delta for c in net.error_components)]
    for k, (a, b) in enumerate(zip(grads["gpu"], grads["cpu"], strict=True)):
        _close(a, b, tol["rel"], f"Net3 backward array {k}")
