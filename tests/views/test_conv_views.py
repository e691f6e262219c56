"""The live views on a conv-pool-dense network, fed by the Trainer's own snapshots: channel
images, kernel images, the error flow and membrane traces of conv neurons, pool layers refused."""

import json

import numpy as np
import pytest
from batscope.app.presets import load_preset
from batscope.engine import Conv2D, Dense, Network, Pool2D
from batscope.engine.analysis import spike_events
from batscope.engine.spikes import SpikeTrains
from batscope.training.taskdata import TaskData
from batscope.training.trainer import Trainer
from batscope.widgets.errorflow import ErrorFlowView
from batscope.widgets.membrane import MembraneView
from batscope.widgets.raster import RasterView
from batscope.widgets.weights import WeightsView
from bokeh.document import Document
from bokeh.embed import json_item

T_MAX = 0.2


@pytest.fixture(scope="module")
def trainer():
    """A Trainer whose network is input (6, 6, 2) -> Conv2D 3 x 3, 3 channels -> Pool2D 2 ->
    Dense 2, tuned so that every layer spikes; its snapshots are the ones the app shows."""
    rng = np.random.default_rng(3)
    times = np.where(rng.random((4, 72, 1)) < 0.6, rng.uniform(0, 0.05, (4, 72, 1)), np.inf)
    x = SpikeTrains(times, np.isfinite(times).sum(axis=2).astype(np.int32))
    data = TaskData(x, np.array([0, 1, 0, 1]), None, None, None, None, 2, 0.05, True)
    cfg = load_preset("convergence").config
    tr = Trainer({**cfg, "training": {**cfg["training"], "t_max": T_MAX}}, data=data)
    net = Network(
        input_shape=(6, 6, 2),
        layers=[
            Conv2D(3, 3, tau_s=0.05, theta=0.2, n_max=4),
            Pool2D(2),
            Dense(2, tau_s=0.05, theta=0.2, n_max=12),
        ],
        seed=1,
    )
    w_conv, w_dense = net.weights
    net.weights = [np.abs(w_conv) * 2.0, np.abs(w_dense) + 0.5]
    tr.network = net  # conv layer specs reach the builder separately; the snapshot code is here
    return tr


def snapshot(trainer, layer=1, neurons=(5,)):
    """The trainer's heavy snapshot of sample 0, membrane of ``layer`` (1-based), ``neurons``."""
    snap = trainer.snapshot(sample_index=0, layer=layer, neurons=neurons, heavy=True)
    assert all(int(a.counts.sum()) > 0 for a in snap.activity)  # every layer spikes
    return snap


def test_snapshot_carries_shapes_kinds_and_refuses_the_pool_membrane(trainer):
    snap = snapshot(trainer, layer=2, neurons=(0, 3))
    assert [a.shape for a in snap.activity] == [(6, 6, 2), (4, 4, 3), (2, 2, 3), (2,)]
    assert [a.kind for a in snap.activity] == ["input", "conv2d", "pool2d", "dense"]
    assert np.isnan(snap.activity[2].theta) and snap.activity[2].n_max == 4 * 4
    assert snap.membrane.u.shape == (0, snap.membrane.t.size)
    assert "pooling layer" in snap.membrane.refused and "no membrane" in snap.membrane.refused
    assert [w.shape for w in snap.weights] == [(3, 3, 3, 2), (2, 12)]
    assert [e.delta.shape for e in snap.errors] == [a.times.shape for a in snap.activity[1:]]
    mem = snapshot(trainer, layer=1, neurons=(0, 47, 48)).membrane  # 48 is out of range
    assert list(mem.neurons) == [0, 47] and mem.refused == ""


def test_population_statistics_count_a_pool_layer_by_its_slots(trainer):
    """Sparsity in heavy snapshots and epoch-end evaluations: a pool layer saturates at
    size²·K_in spikes (it has no n_max of its own)."""
    ev = trainer.evaluate("train")  # the 4 training samples, like the heavy snapshot's batch
    pool = np.asarray(trainer.network.forward(trainer.data.train, T_MAX)[1].counts)
    for sparsity in (ev.sparsity, snapshot(trainer).sparsity):
        assert [s.name for s in sparsity] == ["input", "layer 1", "layer 2", "layer 3"]
        assert sparsity[2].saturated_fraction == pytest.approx((pool == 4 * 4).mean())
        assert sparsity[2].spikes_per_sample == pytest.approx(pool.sum(axis=1).mean())


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_channel_image_counts_and_first_spikes(trainer, layer):
    snap = snapshot(trainer)
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


def test_channel_image_hidden_for_a_dense_layer_and_a_click_selects_the_neuron(trainer):
    view = RasterView()
    view.update([snapshot(trainer)])
    view.view_config.layer = 3
    assert not view._channel_pane.visible
    view.view_config.layer = 1
    view.channel.value = 2

    class Click:
        x, y = 1.0, 3.0  # column 1; image height 3 is layer row 0 of a 4-row layer

    view._on_channel_tap(Click)
    assert view.view_config.layer == 1
    assert view.view_config.neurons == [(0 * 4 + 1) * 3 + 2]


def test_kernels_equal_the_conv_weights(trainer):
    snap = snapshot(trainer)
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
    assert view._plots.objects[-1] is view._kernel_pane  # built for the first conv layer drawn
    view.view_config.param.update(layer=1, neurons=[47])  # conv neuron 47 is in channel 2
    assert view.neuron.value == 2 and view.neuron.name == "output channel"
    view.view_config.layer = 3  # a dense layer after the pool: its receptive field as before
    assert view.layer == 3 and not view.in_channel.visible and view._field_pane.visible
    assert view.neuron.name == "neuron"
    assert view.field_source.data["image"][0].size == snap.weights[1].shape[1]


def test_error_flow_of_conv_neurons_and_refusal_of_the_pool_layer(trainer):
    snap = snapshot(trainer)
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


def test_membrane_of_conv_neurons_and_refusal_of_pool_neurons(trainer):
    view = MembraneView()
    neurons = (0, 7, 47)  # 47 is the last conv neuron: position (3, 3), channel 2
    snap = snapshot(trainer, layer=1, neurons=neurons)
    view.update([snap])
    for i in range(3):
        np.testing.assert_array_equal(view.trace_sources[i].data["u"], snap.membrane.u[i])
    # the trace is exact: u(t) of a conv neuron reaches θ at each of its spikes (docs/model.md §3)
    net, conv = trainer.network, trainer.network.layers[0]
    t_spk, who = view.spike_source.data["t"], view.spike_source.data["neuron"]
    assert len(t_spk) == sum(int(snap.activity[1].counts[j]) for j in neurons) > 0
    for t, j in zip(t_spk, who, strict=True):
        u = net.membrane(np.array([t]), layer=0, neurons=np.array([j]))
        assert u[0, 0] == pytest.approx(conv.theta, abs=1e-9)
    assert "Layer 1" in view.info.object
    pool = snapshot(trainer, layer=2, neurons=(0,))
    view.update([pool])
    assert view.info.object == pool.membrane.refused
    assert all(len(src.data["t"]) == 0 for src in view.trace_sources)
    assert len(view.spike_source.data["t"]) == 0


def test_conv_images_serialize(trainer):
    """Images with NaN pixels (silent positions, kernel gaps) serialise as a page sends them."""
    snap = snapshot(trainer)
    raster, weights = RasterView(), WeightsView()
    for view in (raster, weights):
        assert view.__panel__().get_root(Document()) is not None
        view.update([snap])
    raster.view_config.layer = weights.view_config.layer = 1
    raster.quantity.value = "first spike"
    assert np.isnan(raster.channel_source.data["image"][0]).any()
    assert np.isnan(weights.kernel_source.data["image"][0]).any()
    for fig in (raster.channel_fig, weights.kernels):
        json.dumps(json_item(fig))
