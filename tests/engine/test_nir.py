"""NIR export/import (engine/nir.py) and the clock-driven NIR simulator (engine/nir_clock.py)."""

import sys

import nir
import numpy as np
import pytest
from batscope.datasets.yinyang import encode_yinyang, load_yinyang
from batscope.engine import (
    Adam,
    Conv2D,
    Dense,
    Network,
    Normal,
    Pool2D,
    SpikeCountClass,
    SpikeTrains,
)
from batscope.engine.clock import compare
from batscope.engine.nir import NIRExportError, channels_first_order, network_to_nir, write_nir
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
    with pytest.raises(NIRExportError, match="layer 1: only Dense, Conv2D and Pool2D"):
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


# ------------------------------------------------------------------------ conv and pool layers
def _conv_net(dtype="float64", reset=None):
    """(6, 6, 2) -> Conv2D 3 x 3, 3 channels -> Pool2D 2 -> Dense 4: all layers spike, no buffer
    fills on ``_conv_input``."""
    layers = [
        Conv2D(3, 3, 0.01, 0.05, n_max=20, reset=reset, init=Normal(1, 2)),
        Pool2D(2),
        Dense(4, 0.01, 0.05, n_max=20, init=Normal(0.2, 0.5)),
    ]
    return Network(input_shape=(6, 6, 2), layers=layers, dtype=dtype, seed=3)


def _conv_input(batch=10, seed=1):
    rng = np.random.default_rng(seed)
    return SpikeTrains.from_arrays(rng.uniform(0, 0.02, size=(batch, 72, 1)))


def _channels_first(trains, shape):
    """``trains`` (batscope's channels-last neuron order) in NIR's channels-first order."""
    order = channels_first_order(shape)
    t = trains.numpy()
    return SpikeTrains(np.asarray(t.times)[:, order], np.asarray(t.counts)[:, order])


def test_channels_first_order_maps_nir_indices_to_batscope_indices():
    order = channels_first_order((2, 3, 4))  # H, W, C
    # NIR index c·H·W + row·W + col holds batscope neuron (row·W + col)·C + c
    for c in range(4):
        for row in range(2):
            for col in range(3):
                assert order[c * 6 + row * 3 + col] == (row * 3 + col) * 4 + c
    np.testing.assert_array_equal(channels_first_order((7,)), np.arange(7))


def test_conv_pool_dense_export_layout():
    net = _conv_net()
    g = net.to_nir()
    kinds = [type(g.nodes[b]).__name__ for _, b in g.edges]
    assert kinds == [
        "Conv2d", "CubaLIF", "SumPool2d", "Flatten", "Linear", "CubaLIF", "Output",
    ]  # fmt: skip
    np.testing.assert_array_equal(g.nodes["input"].input_type["input"], [2, 6, 6])  # C, H, W
    conv = g.nodes["conv0"]
    w_conv, w_dense = net.weights
    assert conv.weight.shape == (3, 2, 3, 3)  # (C_out, C_in, kH, kW)
    for o, i, r, c in [(0, 0, 0, 0), (2, 1, 0, 2), (1, 0, 2, 1)]:
        assert conv.weight[o, i, r, c] == w_conv[o, r, c, i]
    np.testing.assert_array_equal(conv.input_shape, [6, 6])
    np.testing.assert_array_equal(conv.output_type["output"], [3, 4, 4])
    assert tuple(conv.stride) == (1, 1) and tuple(conv.padding) == (0, 0)
    assert not np.any(conv.bias)
    assert g.nodes["cubalif0"].v_threshold.shape == (3, 4, 4)  # one neuron per output position
    pool = g.nodes["sumpool1"]
    assert tuple(pool.kernel_size) == tuple(pool.stride) == (2, 2) and not np.any(pool.padding)
    flat = g.nodes["flatten2"]
    np.testing.assert_array_equal(flat.output_type["output"], [12])
    lin = g.nodes["linear2"].weight  # columns in NIR's channels-first order of the (2, 2, 3) pool
    for c in range(3):
        for row in range(2):
            for col in range(2):
                np.testing.assert_array_equal(
                    lin[:, c * 4 + row * 2 + col], w_dense[:, (row * 2 + col) * 3 + c]
                )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conv_round_trip_gives_identical_spikes(tmp_path, dtype):
    net = _conv_net(dtype)
    back = Network.from_nir(write_nir(net, tmp_path / "conv.nir"))
    assert back.input_shape == (6, 6, 2) and back.dtype == net.dtype
    settings = [{k: v for k, v in x.to_dict().items() if k != "init"} for x in net.layers]
    assert [{k: v for k, v in x.to_dict().items() if k != "init"} for x in back.layers] == settings
    for a, b in zip(back.weights, net.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    inp = _conv_input()
    _same_spikes(net.forward(inp, T_MAX), back.forward(inp, T_MAX))


def test_conv_clock_simulation_converges_to_the_exact_spikes():
    """Clock vs exact for conv and dense neurons, in each side's neuron order; the wrong order
    (channels-last neurons fed as channels-first) is far off."""
    net, inp = _conv_net(), _conv_input()
    g = net.to_nir()
    exact = [o.numpy() for o in net.forward(inp, T_MAX)]
    assert net.saturation == [0, 0, 0]
    want = [_channels_first(exact[0], (4, 4, 3)), exact[2]]  # the two CubaLIF layers
    nir_inp = _channels_first(inp, (6, 6, 2))
    runs = {}
    for dt in (1e-4, 1e-5):
        clock = simulate_nir(g, nir_inp, T_MAX, dt)
        runs[dt] = [compare(e, c) for e, c in zip(want, clock, strict=True)]
    for c, f in zip(runs[1e-4], runs[1e-5], strict=True):
        assert f.exact_spikes > 50
        assert f.mean_abs_error < 10 * 1e-5
        assert c.mean_abs_error > 5 * f.mean_abs_error  # first order in dt
        assert f.count_mismatch <= 0.01 * f.exact_spikes
    wrong = compare(exact[0], simulate_nir(g, nir_inp, T_MAX, 1e-5)[0])
    assert wrong.count_mismatch > 20 * max(runs[1e-5][0].count_mismatch, 1)


def test_conv_and_pool_refusals():
    with pytest.raises(NIRExportError, match=r"layer 0: reset \(Δθ = 0.1\)"):
        _conv_net(reset=0.1).to_nir()

    def refused(edit, message):
        g = _conv_net().to_nir()
        edit(g)
        with pytest.raises(NIRExportError, match=message):
            Network.from_nir(g)

    refused(lambda g: setattr(g.nodes["conv0"], "stride", (2, 2)), r"'conv0': stride must be")
    refused(lambda g: setattr(g.nodes["conv0"], "padding", (1, 1)), r"'conv0': padding must be")
    refused(lambda g: setattr(g.nodes["conv0"], "bias", np.ones(3)), "'conv0': a Conv2d bias")
    refused(lambda g: setattr(g.nodes["conv0"], "groups", 2), "'conv0': groups must be 1")
    refused(lambda g: setattr(g.nodes["conv0"], "input_shape", (5, 6)), "'conv0': input_shape")
    refused(
        lambda g: setattr(g.nodes["sumpool1"], "stride", np.array([1, 1])),
        "'sumpool1': stride must equal kernel_size",
    )

    def vary_gain(g):
        g.nodes["cubalif0"].w_in = np.linspace(1, 2, 48).reshape(3, 4, 4)

    refused(vary_gain, "'cubalif0': r·w_in varies across the neurons of a conv layer")

    def drop_flatten(g):
        g.edges = [e for e in g.edges if "flatten2" not in e] + [("sumpool1", "linear2")]
        del g.nodes["flatten2"]

    refused(drop_flatten, "'linear2': a Linear node reads a flat layer")
