"""The live views on a conv-pool-dense network: channel images, kernels, error flow, membrane."""

import numpy as np
import pytest
from batscope.engine import Conv2D, Dense, Network, Pool2D
from batscope.engine.analysis import spike_events
from batscope.engine.backend import to_numpy
from batscope.engine.spikes import SpikeTrains
from batscope.training.telemetry import ErrorFlow, LayerActivity, MembraneWindow, Snapshot
from batscope.widgets.errorflow import ErrorFlowView
from batscope.widgets.membrane import MembraneView
from batscope.widgets.raster import RasterView
from batscope.widgets.weights import WeightsView

T_MAX = 0.2


@pytest.fixture(scope="module")
def net():
    """Input (6, 6, 2) -> Conv2D 3 x 3, 3 channels -> Pool2D 2 -> Dense 4, one forward and
    backward pass on one sample, tuned so that every layer spikes."""
    net = Network(
        input_shape=(6, 6, 2),
        layers=[
            Conv2D(3, 3, tau_s=0.05, theta=0.2, n_max=4),
            Pool2D(2),
            Dense(4, tau_s=0.05, theta=0.2, n_max=3),
        ],
        seed=1,
    )
    w_conv, w_dense = net.weights
    net.weights = [np.abs(w_conv) * 2.0, np.abs(w_dense) + 0.5]
    rng = np.random.default_rng(3)
    times = np.where(rng.random((1, 72, 1)) < 0.6, rng.uniform(0, 0.05, (1, 72, 1)), np.inf)
    inp = SpikeTrains(times, np.isfinite(times).sum(axis=2).astype(np.int32))
    outs = net.forward(inp, T_MAX)
    assert all(int(to_numpy(o.counts).sum()) > 0 for o in outs)
    errors = np.where(np.isfinite(to_numpy(outs[-1].times)), 1.0, 0.0)
    net.backward(errors)
    return net


def snapshot(net, layer=1, neurons=(5,)):
    """The snapshot the trainer builds for sample 0 (training/trainer.py), membrane of ``layer``
    (1-based) with a refusal for a pool layer as the trainer gives it."""
    trains = [net.inputs, *net.outputs]
    kinds = ["input"] + [spec.kind for spec in net.layers]
    activity = tuple(
        LayerActivity(
            name,
            to_numpy(o.times[0]),
            to_numpy(o.counts[0]),
            getattr(spec, "theta", float("nan")),
            getattr(spec, "reset", float("nan")),
            getattr(spec, "n_max", o.times.shape[-1]),
            shape=tuple(shape),
            kind=kind,
        )
        for name, o, spec, shape, kind in zip(
            ["input", "layer 1", "layer 2", "layer 3"],
            trains,
            [None, *net.layers],
            net.shapes,
            kinds,
            strict=True,
        )
    )
    flows = tuple(
        ErrorFlow(k + 1, to_numpy(c.phi[0]), to_numpy(c.mu[0]), to_numpy(c.delta[0]))
        for k, c in enumerate(net.error_components)
    )
    t = np.linspace(0, T_MAX, 200)
    sel = np.array(neurons)
    spec = net.layers[layer - 1]
    if spec.has_weights:
        u = net.membrane(t, layer=layer - 1, neurons=sel)
        mem = MembraneWindow(layer, sel, t, u, spec.theta, spec.reset)
    else:
        mem = MembraneWindow(layer, sel, t, np.zeros((0, t.size)), np.nan, np.nan, "no membrane")
    return Snapshot(
        step=1,
        epoch=0,
        batch=0,
        n_batches=1,
        epochs=1,
        t_max=T_MAX,
        activity=activity,
        errors=flows,
        membrane=mem,
        weights=tuple(to_numpy(w) for w in net.weights),
    )


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_channel_image_counts_and_first_spikes(net, layer):
    snap = snapshot(net)
    view = RasterView()
    view.update([snap])
    view.view_config.layer = layer
    act = snap.activity[layer]
    h, w, c = act.shape
    assert view._channel_pane.visible
    for channel in range(c):
        view.channel.value = channel
        view.quantity.value = "spike count"
        image = view.channel_source.data["image"][0][::-1]  # row 0 of the layer on top
        assert image.shape == (h, w)
        neuron, _, times = spike_events(act.times, act.counts)
        for row in range(h):
            for col in range(w):
                j = (row * w + col) * c + channel
                assert image[row, col] == np.sum(neuron == j)
        view.quantity.value = "first spike"
        image = view.channel_source.data["image"][0][::-1]
        first = np.array(
            [
                times[neuron == j].min() if np.any(neuron == j) else np.nan
                for j in range(channel, h * w * c, c)
            ]
        ).reshape(h, w)
        np.testing.assert_array_equal(image, first.astype(np.float32))
    assert int(act.counts.sum()) > 0


def test_channel_image_hidden_for_a_dense_layer_and_a_click_selects_the_neuron(net):
    view = RasterView()
    view.update([snapshot(net)])
    view.view_config.layer = 3
    assert not view._channel_pane.visible
    view.view_config.layer = 1
    view.channel.value = 2

    class Click:
        x, y = 1.0, 3.0  # column 1; image height 3 is layer row 0 of a 4-row layer

    view._on_channel_tap(Click)
    assert view.view_config.layer == 1
    assert view.view_config.neurons == [(0 * 4 + 1) * 3 + 2]


def test_kernels_equal_the_conv_weights(net):
    snap = snapshot(net)
    view = WeightsView()
    view.update([snap])
    assert view.layer_select.options == {"layer 1": 1, "layer 3": 3}  # the pool has no weights
    w = snap.weights[0]  # (C_out, k, k, C_in) = (3, 3, 3, 2)
    for ch in range(2):
        view.in_channel.value = ch
        tiles = view.kernel_source.data["image"][0][::-1]  # kernel row 0 on top
        assert tiles.shape == (3, 3 * 4 - 1)
        for o in range(3):
            np.testing.assert_array_equal(
                tiles[:, o * 4 : o * 4 + 3], w[o, :, :, ch].astype(np.float32)
            )
        assert np.isnan(tiles[:, 3]).all() and np.isnan(tiles[:, 7]).all()
    assert view.matrix_source.data["image"][0].shape == (3, 18)
    assert view.in_channel.visible and view._kernel_pane.visible and not view._field_pane.visible
    view.view_config.layer = 3  # a dense layer after the pool: its receptive field as before
    assert view.layer == 3 and not view.in_channel.visible and view._field_pane.visible
    assert view.field_source.data["image"][0].size == snap.weights[1].shape[1]


def test_error_flow_of_conv_neurons_and_refusal_of_the_pool_layer(net):
    snap = snapshot(net)
    view = ErrorFlowView()
    view.view_config.layer = 1
    view.update([snap])
    flow = snap.errors[0]
    drawn = view.points_source.data
    act = snap.activity[1]
    assert len(drawn["t"]) == int(act.counts.sum()) > 0
    np.testing.assert_array_equal(drawn["delta"], flow.delta[drawn["neuron"], drawn["slot"]])
    np.testing.assert_allclose(drawn["phi"] + drawn["mu"], drawn["delta"], rtol=1e-12)
    assert "layer 1" in view.info.object
    view.view_config.layer = 2
    assert "pooling layer" in view.info.object and "no α·β" in view.info.object
    assert len(view.points_source.data["t"]) == 0


def test_membrane_of_conv_neurons_and_refusal_of_pool_neurons(net):
    view = MembraneView()
    neurons = (0, 7, 47)  # the last conv neuron: position (3, 3), channel 2
    snap = snapshot(net, layer=1, neurons=neurons)
    view.update([snap])
    conv = net.layers[0]
    rows = conv.dense_rows(to_numpy(net.weights[0]), net.shapes[0], np.array(neurons))
    assert rows.shape == (3, 72)
    drawn = [src.data["u"] for src in view.trace_sources[:3]]
    assert all(len(u) for u in drawn)
    # u reaches θ at each spike of the conv neuron (exact trace, method.md §2)
    t_spk = view.spike_source.data["t"]
    assert len(t_spk) == sum(int(snap.activity[1].counts[j]) for j in neurons)
    u = net.membrane(t_spk[:1], layer=0, neurons=np.array([view.spike_source.data["neuron"][0]]))
    assert u[0, 0] == pytest.approx(conv.theta, abs=1e-9)
    assert "Layer 1" in view.info.object
    view.update([snapshot(net, layer=2, neurons=(0,))])
    assert view.info.object == "no membrane"
    assert all(len(src.data["t"]) == 0 for src in view.trace_sources)
    with pytest.raises(ValueError, match="no membrane"):
        net.membrane(np.zeros(1), layer=1)
