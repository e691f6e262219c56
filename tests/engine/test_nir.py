"""NIR export/import (engine/nir.py) and the clock-driven NIR simulator (engine/nir_clock.py)."""

import sys

import nir
import numpy as np
import pytest
from batscope.datasets.yinyang import encode_yinyang, load_yinyang
from batscope.engine import Adam, Dense, Network, Normal, SpikeCountClass, SpikeTrains
from batscope.engine.clock import compare
from batscope.engine.nir import NIRExportError, network_to_nir, write_nir
from batscope.engine.nir_clock import simulate_nir

T_MAX = 0.08


def _toy_net(dtype="float64", reset=None):
    layers = [
        Dense(8, 0.01, 0.05, reset=reset, n_max=20, init=Normal(4, 5)),
        Dense(4, 0.01, 0.05, n_max=20, init=Normal(2, 3)),
    ]
    return Network(5, layers, dtype=dtype, seed=3)


def _toy_input(batch=20, seed=1):
    rng = np.random.default_rng(seed)
    return SpikeTrains.from_arrays(rng.uniform(0, 0.02, size=(batch, 5, 1)))


def _neurons(net):
    """The layer settings NIR carries (the weight initialiser does not travel)."""
    return [(x.n, x.tau_s, x.theta, x.reset, x.n_max) for x in net.layers]


def _same_spikes(a, b):
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(np.asarray(x.counts), np.asarray(y.counts))
        assert np.array_equal(np.asarray(x.times), np.asarray(y.times))


def test_export_is_linear_cubalif_chain_with_derived_scale():
    net = _toy_net()
    g = net.to_nir()
    assert isinstance(g, nir.NIRGraph)
    kinds = {k: type(v).__name__ for k, v in g.nodes.items()}
    assert kinds == {
        "input": "Input",
        "linear0": "Linear",
        "cubalif0": "CubaLIF",
        "linear1": "Linear",
        "cubalif1": "CubaLIF",
        "output": "Output",
    }
    assert g.edges == [
        ("input", "linear0"),
        ("linear0", "cubalif0"),
        ("cubalif0", "linear1"),
        ("linear1", "cubalif1"),
        ("cubalif1", "output"),
    ]
    for k, layer in enumerate(net.layers):
        lif = g.nodes[f"cubalif{k}"]
        np.testing.assert_array_equal(g.nodes[f"linear{k}"].weight, net.weights[k])
        np.testing.assert_array_equal(lif.tau_syn, layer.tau_s)
        np.testing.assert_array_equal(lif.tau_mem, 2 * layer.tau_s)
        np.testing.assert_array_equal(lif.v_threshold, layer.theta)
        np.testing.assert_array_equal(lif.v_leak, 0.0)
        np.testing.assert_array_equal(lif.v_reset, 0.0)
        # r·w_in = τ_syn·τ_mem makes the PSP equal batscope's kernel (module docstring)
        np.testing.assert_allclose(lif.r * lif.w_in, 2 * layer.tau_s**2, rtol=1e-15)
        assert lif.metadata["batscope_n_max"] == 20


def test_single_spike_psp_equals_batscope_kernel():
    """One input of weight w: NIR's clock-driven v(t) matches ε(s) = τ(e^{-s/τ} - e^{-2s/τ})."""
    tau_s, w, theta = 0.01, 3.0, 1e9  # threshold out of reach: a pure PSP
    net = Network(1, [Dense(1, tau_s, theta, init=Normal(0, 1))], seed=0)
    net.weights = [np.array([[w]])]
    g = net.to_nir()
    lif, tau = g.nodes["cubalif0"], 2 * tau_s
    # integrate NIR's equations over one exact step per grid point from I(0+) = w_in·W/τ_syn
    dt = 1e-4
    s = np.arange(1, 401) * dt
    current0 = lif.w_in[0] * w / lif.tau_syn[0]
    a, b = np.exp(-s / lif.tau_syn[0]), np.exp(-s / lif.tau_mem[0])
    kappa = lif.tau_syn[0] * lif.tau_mem[0] / (lif.tau_mem[0] - lif.tau_syn[0]) * (b - a)
    v = lif.r[0] / lif.tau_mem[0] * current0 * kappa
    np.testing.assert_allclose(v, w * tau * (np.exp(-s / tau) - np.exp(-2 * s / tau)), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_trip_gives_identical_spikes(tmp_path, dtype):
    net = _toy_net(dtype)
    inp = _toy_input()
    out = [o.numpy() for o in net.forward(inp, T_MAX)]
    back = Network.from_nir(net.to_nir())
    assert back.dtype == net.dtype and _neurons(back) == _neurons(net)
    _same_spikes(out, back.forward(inp, T_MAX))
    path = write_nir(net, tmp_path / "net.nir")
    from_file = Network.from_nir(path)
    assert _neurons(from_file) == _neurons(net)
    _same_spikes(out, from_file.forward(inp, T_MAX))


def test_file_is_read_by_nirs_own_reader(tmp_path):
    net = _toy_net()
    path = write_nir(net, tmp_path / "sub" / "net.nir")
    g = nir.read(path)
    assert isinstance(g.nodes["cubalif1"], nir.CubaLIF)
    np.testing.assert_array_equal(g.nodes["linear1"].weight, net.weights[1])
    assert [p.name for p in path.parent.iterdir()] == ["net.nir"]  # no temporary left


def test_unreadable_or_missing_file_is_refused(tmp_path):
    (tmp_path / "bad.nir").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="bad.nir: not a readable NIR file"):
        Network.from_nir(tmp_path / "bad.nir")
    with pytest.raises(FileNotFoundError, match="no such NIR file"):
        Network.from_nir(str(tmp_path / "missing.nir"))


def test_reset_other_than_theta_is_refused():
    with pytest.raises(NIRExportError, match=r"Δθ = 0.1\).*theta \(θ = 0.05\)"):
        _toy_net(reset=0.1).to_nir()


def test_non_dense_layer_is_refused():
    net = _toy_net()
    net.layers[1] = object()
    with pytest.raises(NIRExportError, match="layer 1: only Dense"):
        network_to_nir(net)


def _edit(graph, node, **fields):
    lif = graph.nodes[node]
    for k, v in fields.items():
        setattr(lif, k, np.asarray(v, dtype=float) * np.ones_like(lif.v_threshold))
    return graph


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tau_mem": 0.03}, "tau_mem = 0.03 must be 2·tau_syn"),
        ({"v_leak": 0.01}, "v_leak must be 0"),
        ({"v_reset": -0.05}, "v_reset must be 0"),
        ({"v_threshold": np.linspace(0.05, 0.06, 4)}, "v_threshold varies across neurons"),
        ({"r": -1.0}, "r·w_in must be finite and > 0"),
    ],
)
def test_import_refuses_unrepresentable_neurons(fields, message):
    g = _edit(_toy_net().to_nir(), "cubalif1", **fields)
    with pytest.raises(NIRExportError, match=f"node 'cubalif1': {message}"):
        Network.from_nir(g)


def test_import_refuses_unsupported_graphs():
    g = _toy_net().to_nir()
    g.nodes["cubalif1"] = nir.LIF(
        tau=np.full(4, 0.02), r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4)
    )
    with pytest.raises(NIRExportError, match="node 'cubalif1': expected CubaLIF, got LIF"):
        Network.from_nir(g)
    g = _toy_net().to_nir()
    g.nodes["linear1"] = nir.Affine(weight=g.nodes["linear1"].weight, bias=np.ones(4))
    with pytest.raises(NIRExportError, match="Affine bias"):
        Network.from_nir(g)
    g = _toy_net().to_nir()
    g.edges.append(("cubalif0", "output"))
    with pytest.raises(NIRExportError, match="'cubalif0' has 2 successors"):
        Network.from_nir(g)
    with pytest.raises(TypeError, match="nir.NIRGraph"):
        Network.from_nir({"nodes": {}})


def test_import_folds_r_and_w_in_into_the_weights():
    net = _toy_net()
    g = net.to_nir()
    lif = g.nodes["cubalif0"]
    lif.r = lif.r / 4  # same r·w_in: same network
    lif.w_in = lif.w_in * 4
    np.testing.assert_allclose(Network.from_nir(g).weights[0], net.weights[0], rtol=1e-15)
    lif.w_in = lif.w_in * 2  # twice the current per spike: twice batscope's weight
    np.testing.assert_allclose(Network.from_nir(g).weights[0], 2 * net.weights[0], rtol=1e-15)


def test_import_reads_n_max_from_metadata_or_argument():
    g = _toy_net().to_nir()
    assert [layer.n_max for layer in Network.from_nir(g).layers] == [20, 20]
    assert [layer.n_max for layer in Network.from_nir(g, n_max=3).layers] == [3, 3]


def test_missing_nir_package_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)
    with pytest.raises(ImportError, match=r"pip install 'batscope\[nir\]'"):
        _toy_net().to_nir()


def _clock_errors(graph, net, inp, dt, t_max=T_MAX):
    exact = [o.numpy() for o in net.forward(inp, t_max)]
    assert net.saturation == [0] * len(net.layers)  # no buffer cap: NIR has none
    return [compare(e, c) for e, c in zip(exact, simulate_nir(graph, inp, t_max, dt), strict=True)]


def test_clock_simulation_of_the_graph_converges_to_the_exact_spikes():
    """Grid quantisation: errors of a few dt per layer, shrinking ∝ dt; counts agree."""
    net, inp = _toy_net(), _toy_input()
    g = net.to_nir()
    coarse = _clock_errors(g, net, inp, 1e-4)
    fine = _clock_errors(g, net, inp, 1e-5)
    for c, f in zip(coarse, fine, strict=True):
        assert f.exact_spikes > 100
        assert f.mean_abs_error < 10 * 1e-5
        assert c.mean_abs_error > 5 * f.mean_abs_error  # first order in dt
        assert f.count_mismatch <= 0.01 * f.exact_spikes  # grazing crossings near θ
    # a 5 % error in the current scale r·w_in is visible far above the clock's error
    g.nodes["cubalif0"].r = g.nodes["cubalif0"].r * 1.05
    off = _clock_errors(g, net, inp, 1e-5)
    assert off[0].mean_abs_error > 5 * fine[0].mean_abs_error


def test_clock_simulation_matches_a_trained_yinyang_net():
    """A multi-spike net trained for two seconds (its buffers never fill on these inputs)."""
    x, y = load_yinyang("train")
    inp = encode_yinyang(x[:1500])
    layers = [
        Dense(30, 0.01, 0.03, n_max=10, init=Normal(1, 5)),
        Dense(3, 0.01, 0.03, n_max=10, init=Normal(6, 2)),
    ]
    net, loss, opt = Network(5, layers, seed=1), SpikeCountClass(5, 1), Adam(1e-2)
    rng = np.random.default_rng(0)
    for _ in range(10):
        order = rng.permutation(1500)
        for s in range(0, 1500, 20):
            idx = order[s : s + 20]
            out = net.forward(inp.take(idx), 0.06)
            grads = net.backward(loss.errors(out[-1], y[idx]))
            opt.step(net.weights, [gr / 20 for gr in grads])
    xt, yt = load_yinyang("test")
    test = encode_yinyang(xt[:200])
    out = net.forward(test, 0.06)
    assert (np.asarray(loss.predict(out[-1])) == yt[:200]).mean() > 0.55  # it learned
    for cmp in _clock_errors(net.to_nir(), net, test, 1e-5, t_max=0.06):
        assert cmp.exact_spikes > 500
        assert cmp.count_mismatch <= 0.01 * cmp.exact_spikes
        assert cmp.mean_abs_error < 10 * 1e-5
