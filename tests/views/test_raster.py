"""RasterView: exact glyphs for small layers, a binned image for large ones, taps select neurons."""

import json

import holoviews as hv
import numpy as np
from batscope.engine.analysis import spike_events
from batscope.engine.telemetry import LayerActivity
from batscope.widgets.raster import EXACT_LIMIT, N_BINS, RasterView
from bokeh.embed import json_item
from bokeh.models import HoverTool, SaveTool


def test_empty_state_renders(render, empty_snapshot):
    view = RasterView()
    view.update([empty_snapshot])  # no activity: nothing changes
    plot = render(view.exact_dmap)
    assert len(plot.handles["source"].data["t"]) == 0
    assert isinstance(view.exact_dmap[()], hv.Points)
    assert isinstance(view.binned_dmap[()], hv.Image)
    render(view.binned_dmap)
    assert view.__panel__().get_root() is not None


def test_small_layer_is_exact_with_hover_and_save(render, snapshot):
    view = RasterView()
    plot = render(view.exact_dmap)
    view.update([snapshot])
    act = snapshot.activity[1]
    neuron, slot, t = spike_events(act.times, act.counts)
    data = plot.handles["source"].data
    assert view.mode == "exact" and view._exact_pane.visible and not view._binned_pane.visible
    np.testing.assert_array_equal(data["t"], t)  # exact times, not binned
    np.testing.assert_array_equal(data["neuron"], neuron)
    tools = plot.state.toolbar.tools
    assert any(isinstance(x, SaveTool) for x in tools)
    hover = next(x for x in tools if isinstance(x, HoverTool))
    assert ("t (s)", "@t{0.000000}") in hover.tooltips
    assert "dense1" in view.info.object and "exact times" in view.info.object


def test_layer_selection_follows_view_config(render, snapshot):
    view = RasterView()
    plot = render(view.exact_dmap)
    view.update([snapshot])
    assert view.layer_select.options == {"input": 0, "dense1": 1, "output": 2}
    view.view_config.layer = 2
    assert view.layer_select.value == 2
    assert len(plot.handles["source"].data["t"]) == snapshot.activity[2].counts.sum()
    view.layer_select.value = 0
    assert view.view_config.layer == 0
    assert "input" in view.info.object


def test_layer_without_spikes_keeps_element_type(render, make_snapshot):
    snap = make_snapshot()
    act = snap.activity[1]
    silent = LayerActivity(act.name, np.full_like(act.times, np.inf), np.zeros_like(act.counts))
    snap = make_snapshot(activity=(snap.activity[0], silent, snap.activity[2]))
    view = RasterView()
    plot = render(view.exact_dmap)
    view.update([snap])
    assert isinstance(view.exact_dmap[()], hv.Points)
    assert len(plot.handles["source"].data["t"]) == 0


def test_nan_times_are_left_out(render, make_snapshot):
    snap = make_snapshot()
    act = snap.activity[1]
    times = act.times.copy()
    j = int(np.argmax(act.counts))
    times[j, 0] = np.nan
    bad = LayerActivity(act.name, times, act.counts, act.theta, act.reset, act.n_max)
    view = RasterView()
    plot = render(view.exact_dmap)
    view.update([make_snapshot(activity=(snap.activity[0], bad, snap.activity[2]))])
    assert np.isfinite(plot.handles["source"].data["t"]).all()
    assert len(plot.handles["source"].data["t"]) == act.counts.sum() - 1


def test_huge_layer_stays_binned_and_small(render, make_snapshot):
    snap = make_snapshot(sizes=(784, 800, 10), k=30, errors=False)
    n_spikes = int(snap.activity[1].counts.sum())
    assert n_spikes > EXACT_LIMIT
    view = RasterView()
    exact, binned = render(view.exact_dmap), render(view.binned_dmap)
    view.update([snap])
    assert view.mode == "binned" and view._binned_pane.visible
    assert len(exact.handles["source"].data["t"]) == 0
    image = binned.handles["source"].data["image"][0]
    assert image.shape == (800, N_BINS) and image.dtype == np.float32
    assert image.sum() == n_spikes
    assert "binned" in binned.state.xaxis[0].axis_label
    payload = len(json.dumps(json_item(binned.state)))
    assert payload < 2_000_000  # well under Bokeh's 20 MB websocket frame


def test_raster_mode_overrides_auto(render, make_snapshot):
    view = RasterView()
    binned = render(view.binned_dmap)
    view.update([make_snapshot()])
    view.view_config.raster_mode = "binned"
    assert view.mode == "binned"
    assert binned.handles["source"].data["image"][0].shape == (12, N_BINS)
    view.view_config.raster_mode = "exact"
    assert view.mode == "exact"


def test_binned_row_zero_is_neuron_zero(render, make_snapshot):
    snap = make_snapshot()
    view = RasterView()
    plot = render(view.binned_dmap)
    view.update([snap])
    view.view_config.raster_mode = "binned"
    counts = snap.activity[1].counts
    image = view.binned_dmap[()]
    for j in range(len(counts)):
        assert image.select(neuron=j).dimension_values("spikes").sum() == counts[j]
    assert plot.handles["source"].data["dh"][0] == len(counts)


def test_tap_selects_neurons_for_the_membrane_view(snapshot):
    view = RasterView()
    view.update([snapshot])
    view.view_config.layer = 2
    view.exact_tap.event(x=0.1, y=2.8)
    assert view.view_config.neurons == [3] and view.view_config.layer == 2
    view.add_to_selection = True
    view.exact_tap.event(x=0.1, y=1.1)
    assert view.view_config.neurons == [3, 1]
    view.exact_tap.event(x=0.1, y=99)  # clamped to the last neuron
    assert view.view_config.neurons[-1] == 3
    view.view_config.raster_mode = "binned"
    view.add_to_selection = False
    view.binned_tap.event(x=0.1, y=0.2)
    assert view.view_config.neurons == [0]


def test_tap_on_input_layer_is_ignored(snapshot):
    view = RasterView()
    view.update([snapshot])
    view.view_config.layer = 0
    view.exact_tap.event(x=0.1, y=5)
    assert view.view_config.neurons == [0] and view.view_config.layer == 0


def test_svg_export_switches_the_backend(render, snapshot):
    view = RasterView()
    plot = render(view.exact_dmap)
    view.update([snapshot])
    assert plot.state.output_backend != "svg"
    view.view_config.svg_export = True
    assert plot.state.output_backend == "svg"
    view.view_config.svg_export = False
    assert plot.state.output_backend != "svg"


def test_reset_empties_the_raster(render, snapshot):
    view = RasterView()
    plot = render(view.exact_dmap)
    view.update([snapshot])
    view.reset()
    assert len(plot.handles["source"].data["t"]) == 0
    assert "No spikes" in view.info.object


def test_views_build_without_a_prior_hv_extension():
    """The factory may build views before app/main.py runs hv.extension("bokeh")."""
    import subprocess
    import sys

    code = (
        "from batscope.widgets import errorflow, latency, membrane, raster, sparsity, weights\n"
        "for m, c in [(raster, 'RasterView'), (membrane, 'MembraneView'),\n"
        "             (errorflow, 'ErrorFlowView'), (sparsity, 'SparsityView'),\n"
        "             (latency, 'LatencyView'), (weights, 'WeightsView')]:\n"
        "    getattr(m, c)().__panel__().get_root()\n"
        "print('built')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "built" in out.stdout


def test_equal_spikes_are_not_sent_again(make_snapshot):
    view = RasterView()
    sent = []
    view.exact_pipe.add_subscriber(lambda **_: sent.append(1))
    view.update([make_snapshot(step=1)])
    view.update([make_snapshot(step=2)])  # a new snapshot with the same spikes: no redraw
    assert len(sent) == 1
    view.update([make_snapshot(seed=1)])
    assert len(sent) == 2


def test_unchanged_compares_nested_payloads():
    from batscope.widgets.raster import unchanged

    a = {"z": np.array([1.0, np.nan]), "bounds": (0.0, 1.0), "m": {"k": [np.arange(3)]}}
    b = {"z": np.array([1.0, np.nan]), "bounds": (0.0, 1.0), "m": {"k": [np.arange(3)]}}
    assert unchanged(a, b)
    assert not unchanged(a, {**b, "bounds": (0.0, 2.0)})
    assert not unchanged(a, {**b, "z": np.array([1.0, 2.0])})
    assert not unchanged(a, {**b, "z": np.array([1.0, np.nan], np.float32)})
    assert not unchanged({"x": 1}, {"y": 1})
