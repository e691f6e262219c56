"""SparsityView: per-layer bars, a spikes-per-neuron histogram and the history over training."""

import math

import numpy as np
import pytest
from batscope.engine.analysis import layer_sparsity
from batscope.widgets.sparsity import NO_LAYERS, SparsityView


def test_empty_state_renders(empty_snapshot, served):
    view = SparsityView()
    view.update([empty_snapshot])
    served(view)
    assert view.history.empty
    assert list(view.layers.factors) == NO_LAYERS
    for source in (view.bars_source, view.hist_source, *view.pool.sources):
        assert all(len(col) == 0 for col in source.data.values())
    assert not any(item.visible for item in view.pool.items)


def test_bars_and_fractions(snapshot):
    view = SparsityView()
    view.update([snapshot])
    names = [s.name for s in snapshot.sparsity]
    data = view.bars_source.data
    assert list(data["layer"]) == names
    assert list(view.spikes.x_range.factors) == list(view.fractions.x_range.factors) == names
    np.testing.assert_allclose(data["spikes"], [s.spikes_per_sample for s in snapshot.sparsity])
    assert view.spikes.y_range.end == pytest.approx(1.1 * max(data["spikes"]))
    assert (view.fractions.y_range.start, view.fractions.y_range.end) == (0, 100)
    out = snapshot.sparsity[-1]
    assert data["dead"][-1] == pytest.approx(100 * out.dead_fraction)
    assert data["active"][-1] == pytest.approx(100 * out.active_fraction)
    bars = {r.name: r.glyph.top for r in view.fractions.renderers}
    assert bars == {"active": "active", "dead": "dead", "saturated": "saturated"}
    items = [item.label.value for item in view.fractions.legend[0].items]
    assert items == ["active", "dead", "saturated"]


def test_factors_change_only_with_the_layer_names(make_snapshot, served):
    view = SparsityView()
    view.update([make_snapshot(step=1)])
    events = served(view)
    view.update([make_snapshot(step=2, seed=1)])  # new values, the same layers
    assert view.layers not in {e.model for e in events}
    view.update([make_snapshot(step=3, sizes=(20, 12, 8, 4))])  # another network
    assert list(view.layers.factors) == ["input", "dense1", "dense2", "output"]


def test_histogram_of_the_selected_layer(snapshot):
    view = SparsityView()
    view.update([snapshot])  # view_config.layer = 1 -> the first hidden layer
    s = snapshot.sparsity[1]
    assert view.layer_select.value == s.name == "dense1"
    data = view.hist_source.data
    assert data["top"].sum() == len(s.spikes_per_neuron)
    np.testing.assert_array_equal(data["left"][1:], data["right"][:-1])
    assert view.histogram.title.text == "spikes per neuron (dense1)"
    view.view_config.layer = 2
    assert view.layer_select.value == snapshot.sparsity[2].name == "output"
    assert view.histogram.title.text == "spikes per neuron (output)"


def test_history_accumulates_without_duplicates(make_snapshot):
    view = SparsityView()
    view.update([make_snapshot(step=1, epoch=0), make_snapshot(step=2, epoch=1, seed=1)])
    view.update([make_snapshot(step=2, epoch=1, seed=1)])  # the same step again
    assert len(view.history) == 6  # 2 steps x 3 layers
    assert sorted(set(view.history["epoch"])) == [0.0, 1.0]
    shown = [item.label.value for item in view.pool.items if item.visible]
    assert shown == ["input", "dense1", "output"]  # a labelled line (with markers) per layer
    assert len({r.glyph.line_color for r in view.pool.lines}) == len(view.pool.lines)
    assert all(list(src.data["epoch"]) == [0.0, 1.0] for src in view.pool.sources[:3])
    assert all(len(src.data["epoch"]) == 0 for src in view.pool.sources[3:])
    view.history_measure = "saturated"
    assert "saturated" in view.timeline.yaxis[0].axis_label
    for name, src in zip(shown, view.pool.sources, strict=False):
        want = view.history.loc[view.history["layer"] == name, "saturated"]
        np.testing.assert_allclose(src.data["value"], want)


def test_dead_neurons_curve_values(make_snapshot):
    alive = layer_sparsity("hidden", np.ones((4, 10), np.int32), 5)
    dying = layer_sparsity("hidden", np.array([[1] * 3 + [0] * 7] * 4, np.int32), 5)
    view = SparsityView()
    view.update([make_snapshot(step=1, epoch=0, sparsity=(alive,))])
    view.update([make_snapshot(step=2, epoch=1, sparsity=(dying,))])
    np.testing.assert_allclose(view.history["dead"], [0.0, 70.0])
    np.testing.assert_allclose(view.pool.sources[0].data["value"], [0.0, 70.0])


def test_reset_clears_history(snapshot):
    view = SparsityView()
    view.update([snapshot])
    view.reset()
    assert view.history.empty and len(view.bars_source.data["layer"]) == 0
    assert all(len(src.data["epoch"]) == 0 for src in view.pool.sources)
    assert not any(item.visible for item in view.pool.items)
    assert list(view.layers.factors) == NO_LAYERS
    assert view.histogram.title.text == "spikes per neuron" and view.spikes.y_range.end == 1.0
    assert "No sparsity" in view.info.object


def test_the_same_snapshot_twice_sends_nothing(snapshot, served):
    view = SparsityView()
    view.update([snapshot])
    events = served(view)
    view.update([snapshot])
    assert events == []


def test_figures_follow_svg_export():
    view = SparsityView()
    view.view_config.svg_export = True
    figs = (view.spikes, view.fractions, view.histogram, view.timeline)
    assert {f.output_backend for f in figs} == {"svg"}


def _trainer(task="convergence", sizes=(2,), **training):
    from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig, run_config
    from batscope.training.trainer import Trainer

    layers = [LayerSpec(size=n, tau_s=0.13, theta=0.3, n_max=5) for n in sizes]
    net = NetworkSpec(layers=layers)
    return Trainer(run_config(net, TrainingConfig(task=task, **training)))


def test_history_is_complete_while_the_tab_was_hidden():
    from batscope.app.session import ViewGate
    from batscope.training.telemetry import Outbox

    trainer, view, shown = _trainer(epochs=20, y_true=3, y_false=0), SparsityView(), {"on": False}
    gate, outbox = ViewGate(lambda: view, lambda: shown["on"]), Outbox(maxlen=4)
    heavy_steps = []
    for k in range(12):
        trainer.step()
        heavy = k % 3 == 0  # sparsity is measured about once a second, not every snapshot
        outbox.put(trainer.snapshot(heavy=heavy))
        heavy_steps += [trainer.step_count] if heavy else []
        if k % 5 == 4:  # the session drains now and then; the outbox overflowed meanwhile
            gate.update(outbox.drain())
    gate.update(outbox.drain())
    assert view.history.empty  # hidden: nothing drawn yet
    shown["on"] = True
    gate.flush()
    # every measurement taken while hidden, for every layer (input and the network's)
    assert sorted(set(view.history["step"])) == heavy_steps
    assert len(view.history) == 2 * len(heavy_steps)


def test_the_input_layer_is_never_saturated():
    # TTFS images: one input slot a pixel, so every lit pixel would count as "full"
    trainer = _trainer("mnist", (10,), n_train=50, val_fraction=0.0, t_max=0.2, y_true=3)
    ev = trainer.evaluate("test")
    names = [s.name for s in ev.sparsity]
    assert names == ["input", "layer 1"]
    assert math.isnan(ev.sparsity[0].saturated_fraction) and ev.sparsity[0].active_fraction > 0
    assert 0 <= ev.sparsity[1].saturated_fraction <= 1
    snap = trainer.snapshot(heavy=True)
    assert math.isnan(snap.sparsity[0].saturated_fraction)
    assert [r.layer for r in snap.sparsity_rows] == names and math.isnan(
        snap.sparsity_rows[0].saturated
    )
    view = SparsityView()
    view.update([snap])
    assert math.isnan(view.bars_source.data["saturated"][0])  # no bar for the input
    assert "saturated" not in view.info.object


def test_layer_sparsity_without_a_buffer():
    counts = np.ones((3, 4), np.int32)
    assert layer_sparsity("input", counts, 1).saturated_fraction == 1.0
    s = layer_sparsity("input", counts, None)
    assert math.isnan(s.saturated_fraction) and s.active_fraction == 1.0
