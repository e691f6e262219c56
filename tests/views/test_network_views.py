"""NetworkViews: the app's raster, membrane, error-flow and latency views of a network built in
Python (as in a notebook), carrying the engine's own spike times, traces and α·β errors."""

import numpy as np
import pytest
from batscope.engine import Dense, Network, TTFSCrossEntropy
from batscope.engine.analysis import latency_curve, spike_events
from batscope.engine.spikes import SpikeTrains
from batscope.widgets.network_views import NetworkViews
from bokeh.document import Document

T_MAX = 0.3
N_SAMPLES = 6


def _network():
    """20 inputs -> 8 -> 3, weights large enough that hidden neurons fire several times."""
    net = Network(
        n_inputs=20,
        layers=[
            Dense(8, tau_s=0.05, theta=0.2, n_max=8),
            Dense(3, tau_s=0.05, theta=0.3, n_max=8),
        ],
        dtype="float64",
        seed=2,
    )
    w1, w2 = net.weights
    net.weights = [np.abs(w1) * 3.0 + 1.0, np.abs(w2) + 1.0]
    return net


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    times = np.sort(rng.uniform(0.0, 0.1, (N_SAMPLES, 20, 2)), axis=2)
    x = SpikeTrains.from_arrays(times)
    return x, np.array([0, 1, 2, 0, 1, 2])


@pytest.fixture(scope="module")
def views(data):
    x, y = data
    return NetworkViews(
        _network(), x, y, TTFSCrossEntropy(0.05), t_max=T_MAX, sample_index=2, neurons=[1, 4]
    )


def _engine_run(data, sample):
    """The engine's own forward and backward of one sample, on a fresh copy of the network."""
    x, y = data
    net, loss = _network(), TTFSCrossEntropy(0.05)
    inp = SpikeTrains(x.times[sample : sample + 1], x.counts[sample : sample + 1])
    outs = net.forward(inp, T_MAX)
    net.backward(loss.errors(outs[-1], y[sample : sample + 1]))
    return net, outs


def test_the_raster_draws_the_engines_exact_spike_times(views, data):
    net, outs = _engine_run(data, 2)
    assert views.snapshot.sample_index == 2 and views.snapshot.label == 2
    hidden = outs[0]
    assert hidden.counts.max() > 1  # several spikes per neuron: the reset path matters
    neuron, slot, t = spike_events(hidden.times[0], hidden.counts[0])
    src = views.raster.exact_source.data
    assert views.raster.mode == "exact"
    np.testing.assert_array_equal(src["t"], t)  # the engine's times, bit for bit
    np.testing.assert_array_equal(src["neuron"], neuron)
    np.testing.assert_array_equal(src["slot"], slot)
    assert "sample 2, label 2" in views.raster.info.object


def test_the_membrane_trace_is_the_engines_u_of_t(views, data):
    net, _ = _engine_run(data, 2)
    m = views.snapshot.membrane
    assert (m.layer, list(m.neurons)) == (1, [1, 4])
    np.testing.assert_array_equal(m.u, net.membrane(m.t, sample=0, layer=0, neurons=[1, 4]))
    pool = views.membrane.pool
    np.testing.assert_array_equal(pool.sources[0].data["t"], m.t)  # 400 points: no decimation
    np.testing.assert_array_equal(pool.sources[1].data["u"], m.u[1])
    assert views.membrane.theta_source.data["y"].tolist() == [0.2]


def test_the_error_flow_shows_phi_mu_alpha_beta_and_delta_of_the_engine(views, data):
    net, outs = _engine_run(data, 2)
    phi, mu, delta = net.error_components[0]  # the hidden layer, the one view_config.layer shows
    src = views.error_flow.points_source.data
    neuron, slot = src["neuron"].astype(int), src["slot"].astype(int)
    assert neuron.size == int(outs[0].counts.sum())
    np.testing.assert_array_equal(src["phi"], phi[0][neuron, slot])
    np.testing.assert_array_equal(src["mu"], mu[0][neuron, slot])
    np.testing.assert_array_equal(src["delta"], delta[0][neuron, slot])
    np.testing.assert_allclose(src["delta"], src["phi"] + src["mu"], rtol=1e-12, atol=1e-15)
    assert np.abs(src["mu"]).max() > 0  # α·β is not zero for multi-spike neurons
    assert "reset-path share" in views.error_flow.info.object


def test_the_latency_curve_is_measured_over_every_input(views, data):
    x, y = data
    outs = _network().forward(x, T_MAX)
    expected = latency_curve(
        outs[-1].times, outs[-1].counts, y, views.snapshot.latency.t, mode="ttfs", t_enc=0.1
    )
    lat = views.snapshot.latency
    np.testing.assert_array_equal(lat.accuracy, expected.accuracy)
    assert lat.t_enc == pytest.approx(x.times[np.isfinite(x.times)].max())  # the last input spike
    line = views.latency.accuracy_lines.sources[0].data
    np.testing.assert_allclose(line["value"], 100 * lat.accuracy)
    assert "ttfs decoding" in views.latency.info.object


def test_another_sample_or_neuron_is_computed_again(data):
    x, y = data
    views = NetworkViews(_network(), x, y, TTFSCrossEntropy(0.05), t_max=T_MAX)
    views.view_config.sample_index = 4
    _, outs = _engine_run(data, 4)
    np.testing.assert_array_equal(
        views.raster.exact_source.data["t"], spike_events(outs[0].times[0], outs[0].counts[0])[2]
    )
    views.view_config.neurons = [7]
    assert list(views.snapshot.membrane.neurons) == [7]
    assert views.membrane.pool.sources[0].data["neuron"][0] == 7
    with pytest.raises(ValueError, match="sample_index.*at most 5"):
        views.view_config.sample_index = N_SAMPLES
    assert views.snapshot.sample_index == 4  # the refused value changed nothing


def test_bad_arguments_are_refused_naming_them(data):
    x, y = data
    net, loss = _network(), TTFSCrossEntropy(0.05)
    with pytest.raises(ValueError, match="labels must be 6 integer class indices"):
        NetworkViews(net, x, y[:3], loss, t_max=T_MAX)
    with pytest.raises(ValueError, match="sample_index.*at most 5"):
        NetworkViews(net, x, y, loss, t_max=T_MAX, sample_index=6)
    with pytest.raises(ValueError, match="t_max"):
        NetworkViews(net, x, y, loss, t_max=-1.0)
    with pytest.raises(TypeError, match="inputs must be SpikeTrains"):
        NetworkViews(net, x.times, y, loss, t_max=T_MAX)


def test_the_views_render_as_one_panel_of_tabs(views):
    tabs = views.__panel__()
    assert [name for name, _ in zip(tabs._names, tabs, strict=True)] == [
        "Raster",
        "Membrane",
        "Error flow",
        "Latency",
    ]
    assert tabs.get_root(Document()) is not None


def test_the_input_raster_shows_the_times_the_network_read(data):
    """A float32 network rounds float64 input times: the raster shows the rounded ones."""
    x, y = data
    net = Network(n_inputs=20, layers=[Dense(3, tau_s=0.05, theta=0.2)], dtype="float32", seed=0)
    views = NetworkViews(net, x, y % 3, TTFSCrossEntropy(0.05), t_max=T_MAX, layer=0)
    shown = views.snapshot.activity[0].times
    assert shown.dtype == np.float32
    np.testing.assert_array_equal(shown, x.times[0].astype(np.float32))
    assert views.raster.layer_select.value == 0
