"""SparsityView: per-layer bars, a spikes-per-neuron histogram and the history over training."""

import holoviews as hv
import numpy as np
import pytest
from batscope.engine.analysis import layer_sparsity
from batscope.widgets.sparsity import SparsityView


def test_empty_state_renders(render, empty_snapshot):
    view = SparsityView()
    view.update([empty_snapshot])
    for dmap in (view.spikes, view.fractions, view.histogram, view.timeline):
        render(dmap)
    assert isinstance(view.spikes[()], hv.Bars)
    assert view.history.empty
    assert view.__panel__().get_root() is not None


def test_bars_and_fractions(render, snapshot):
    view = SparsityView()
    spikes, fractions = render(view.spikes), render(view.fractions)
    view.update([snapshot])
    data = spikes.handles["source"].data
    assert list(data["layer"]) == [s.name for s in snapshot.sparsity]
    np.testing.assert_allclose(data["spikes"], [s.spikes_per_sample for s in snapshot.sparsity])
    frac = fractions.handles["source"].data
    assert set(frac["measure"]) == {"active", "dead", "saturated"}
    out = snapshot.sparsity[-1]
    i = [
        j
        for j, (la, me) in enumerate(zip(frac["layer"], frac["measure"], strict=True))
        if la == out.name and me == "dead"
    ][0]
    assert frac["value"][i] == pytest.approx(100 * out.dead_fraction)


def test_histogram_of_the_selected_layer(render, snapshot):
    view = SparsityView()
    plot = render(view.histogram)
    view.update([snapshot])  # view_config.layer = 1 -> the first hidden layer
    s = snapshot.sparsity[1]
    assert view.layer_select.value == s.name == "dense1"
    assert plot.handles["source"].data["top"].sum() == len(s.spikes_per_neuron)
    view.view_config.layer = 2
    assert view.layer_select.value == snapshot.sparsity[2].name == "output"


def test_history_accumulates_without_duplicates(render, make_snapshot):
    view = SparsityView()
    plot = render(view.timeline)
    view.update([make_snapshot(step=1, epoch=0), make_snapshot(step=2, epoch=1, seed=1)])
    view.update([make_snapshot(step=2, epoch=1, seed=1)])  # the same step again
    assert len(view.history) == 6  # 2 steps x 3 layers
    assert sorted(set(view.history["epoch"])) == [0.0, 1.0]
    assert sum(r.visible for r in plot.state.renderers) == 6  # a curve and markers per layer
    view.history_measure = "saturated"
    assert "saturated" in plot.state.yaxis[0].axis_label


def test_dead_neurons_curve_values(make_snapshot):
    alive = layer_sparsity("hidden", np.ones((4, 10), np.int32), 5)
    dying = layer_sparsity("hidden", np.array([[1] * 3 + [0] * 7] * 4, np.int32), 5)
    view = SparsityView()
    view.update([make_snapshot(step=1, epoch=0, sparsity=(alive,))])
    view.update([make_snapshot(step=2, epoch=1, sparsity=(dying,))])
    np.testing.assert_allclose(view.history["dead"], [0.0, 70.0])
    curve = view.timeline[()].get(0).last
    np.testing.assert_allclose(curve.dimension_values("dead"), [0.0, 70.0])


def test_reset_clears_history(snapshot):
    view = SparsityView()
    view.update([snapshot])
    view.reset()
    assert view.history.empty and len(view.bars_pipe.data) == 0
    assert "No sparsity" in view.info.object
