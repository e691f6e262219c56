"""Bad input -> ValueError/TypeError naming the parameter, at every public entry point."""

import numpy as np
import pytest
from batscope.engine import Dense, Network, Normal, SpikeTrains, Uniform, cpu
from batscope.engine.init import initializer_from_dict
from batscope.engine.kernels import get_kernels


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        ({"n": 0}, ValueError, "n"),
        ({"n": 2.5}, TypeError, "n"),
        ({"n": True}, TypeError, "n"),
        ({"tau_s": 0.0}, ValueError, "tau_s"),
        ({"tau_s": float("nan")}, ValueError, "tau_s"),
        ({"tau_s": "0.1"}, TypeError, "tau_s"),
        ({"theta": -1.0}, ValueError, "theta"),
        ({"theta": float("inf")}, ValueError, "theta"),
        ({"reset": 0.0}, ValueError, "reset"),
        ({"n_max": 0}, ValueError, "n_max"),
        ({"init": "uniform"}, TypeError, "init"),
    ],
)
def test_dense_rejects(kwargs, exc, name):
    args = {"n": 3, "tau_s": 0.1, "theta": 0.2} | kwargs
    with pytest.raises(exc, match=name):
        Dense(**args)


def test_initializers_reject():
    with pytest.raises(ValueError, match="low"):
        Uniform(1.0, 0.0)
    with pytest.raises(ValueError, match="std"):
        Normal(0.0, -1.0)
    with pytest.raises(ValueError, match="mean"):
        Normal(float("nan"), 1.0)
    with pytest.raises(TypeError, match="rng"):
        Uniform().init(0, (2, 2))
    with pytest.raises(ValueError, match="kind"):
        initializer_from_dict({"kind": "xavier"})
    with pytest.raises(ValueError, match="dtype"):
        Uniform().init(np.random.default_rng(0), (2, 2), "int32")


def test_network_constructor_rejects():
    layer = Dense(3, 0.1, 0.2)
    with pytest.raises(ValueError, match="n_inputs"):
        Network(0, [layer])
    with pytest.raises(TypeError, match="n_inputs"):
        Network("4", [layer])
    with pytest.raises(ValueError, match="layers"):
        Network(4, [])
    with pytest.raises(TypeError, match="layers"):
        Network(4, [layer, "dense"])
    with pytest.raises(ValueError, match="backend"):
        Network(4, [layer], backend="tpu")
    with pytest.raises(ValueError, match="dtype"):
        Network(4, [layer], dtype="float16")
    with pytest.raises(ValueError, match="seed"):
        Network(4, [layer], seed=-1)
    with pytest.raises(TypeError, match="seed"):
        Network(4, [layer], seed=1.5)


@pytest.fixture
def net():
    return Network(4, [Dense(3, 0.1, 0.1, init=Normal(2, 1)), Dense(2, 0.1, 0.1)], seed=1)


@pytest.fixture
def inp():
    t = np.sort(np.random.default_rng(0).uniform(0, 0.3, (2, 4, 2)), axis=2)
    return SpikeTrains.from_arrays(t)


def test_forward_rejects(net, inp):
    with pytest.raises(TypeError, match="inp"):
        net.forward(inp.times, 1.0)
    with pytest.raises(ValueError, match="n_inputs"):
        net.forward(SpikeTrains.empty(2, 5), 1.0)
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="t_max"):
            net.forward(inp, bad)
    with pytest.raises(TypeError, match="t_max"):
        net.forward(inp, "1.0")


def test_backward_rejects(net, inp):
    with pytest.raises(RuntimeError, match="forward"):
        net.backward(np.zeros((2, 2, 30)))
    out = net.forward(inp, 1.0)[-1]
    with pytest.raises(ValueError, match="errors"):
        net.backward(np.zeros((2, 2, 5)))
    bad = np.zeros(out.times.shape)
    bad[np.isfinite(out.times)] = np.nan
    if np.isfinite(out.times).any():
        with pytest.raises(ValueError, match="errors"):
            net.backward(bad)
    with pytest.raises(TypeError, match="errors"):
        net.backward(np.zeros(out.times.shape, dtype=object))
    with pytest.raises(TypeError, match="input_errors"):
        net.backward(np.zeros(out.times.shape), input_errors="yes")


def test_weights_setter_rejects_and_copies(net):
    w = [np.ones((3, 4)), np.ones((2, 3))]
    net.weights = w
    w[0][0, 0] = 5.0
    assert net.weights[0][0, 0] == 1.0  # copied
    with pytest.raises(ValueError, match=r"weights\[1\]"):
        net.weights = [np.ones((3, 4)), np.ones((3, 2))]
    with pytest.raises(ValueError, match="weights"):
        net.weights = [np.ones((3, 4))]
    with pytest.raises(ValueError, match="NaN"):
        net.weights = [np.full((3, 4), np.nan), np.ones((2, 3))]
    with pytest.raises(TypeError, match="weights"):
        net.weights = np.ones((3, 4))
    np.testing.assert_array_equal(net.weights[0], np.ones((3, 4)))  # untouched


def test_membrane_rejects(net, inp):
    with pytest.raises(RuntimeError, match="forward"):
        net.membrane(np.linspace(0, 1, 5))
    net.forward(inp, 1.0)
    t = np.linspace(0, 1, 5)
    with pytest.raises(ValueError, match="sample"):
        net.membrane(t, sample=2)
    with pytest.raises(ValueError, match="layer"):
        net.membrane(t, layer=2)
    with pytest.raises(ValueError, match="neurons"):
        net.membrane(t, neurons=[5])
    with pytest.raises(TypeError, match="neurons"):
        net.membrane(t, neurons=[0.5])
    with pytest.raises(ValueError, match="t"):
        net.membrane(np.ones((2, 2)))
    with pytest.raises(ValueError, match="finite"):
        net.membrane(np.array([0.0, np.nan]))


def test_kernel_entry_points_reject():
    t = np.zeros((2, 3, 1))
    c = np.ones((2, 3), np.int32)
    w = np.ones((1, 4, 3))
    g = np.zeros(2, np.int32)
    with pytest.raises(ValueError, match="W"):
        cpu.dense_forward(t, c, np.ones((4, 3)), g, 0.1, 0.1, 0.1, 5, 1.0)
    with pytest.raises(ValueError, match="pre_times"):
        cpu.dense_forward(
            np.zeros((2, 5, 1)), np.ones((2, 5), np.int32), w, g, 0.1, 0.1, 0.1, 5, 1.0
        )
    with pytest.raises(ValueError, match="pre_counts"):
        cpu.dense_forward(t, np.ones((2, 4), np.int32), w, g, 0.1, 0.1, 0.1, 5, 1.0)
    with pytest.raises(ValueError, match="group"):
        cpu.dense_forward(t, c, w, np.array([0, 1], np.int32), 0.1, 0.1, 0.1, 5, 1.0)
    with pytest.raises(ValueError, match="group"):
        cpu.dense_forward(t, c, w, np.zeros(3, np.int32), 0.1, 0.1, 0.1, 5, 1.0)
    with pytest.raises(TypeError, match="W"):
        cpu.dense_forward(t, c, w.astype(np.int64), g, 0.1, 0.1, 0.1, 5, 1.0)
    for name, kwargs in [
        ("tau_s", {"tau_s": 0.0}),
        ("theta", {"theta": -1.0}),
        ("reset", {"reset": 0.0}),
        ("n_max", {"n_max": 0}),
        ("t_max", {"t_max": float("nan")}),
    ]:
        args = {"tau_s": 0.1, "theta": 0.1, "reset": 0.1, "n_max": 5, "t_max": 1.0} | kwargs
        with pytest.raises(ValueError, match=name):
            cpu.dense_forward(t, c, w, g, **args)
    tt, cc, uu = cpu.dense_forward(t, c, w, g, 0.1, 0.1, 0.1, 5, 1.0)
    with pytest.raises(ValueError, match="phi"):
        cpu.dense_backward(t, c, w, g, tt, cc, uu, np.zeros((2, 4, 2)), 0.1, 0.1, False)
    with pytest.raises(ValueError, match="udot"):
        cpu.dense_backward(t, c, w, g, tt, cc, uu[:, :, :2], np.zeros(tt.shape), 0.1, 0.1, False)
    with pytest.raises(ValueError, match="backend"):
        get_kernels("tpu")
