"""RasterView: exact glyphs for small layers, a binned image for large ones, taps select neurons."""

import json

import numpy as np
import pytest
from batscope.engine.analysis import spike_events
from batscope.training.telemetry import LayerActivity
from batscope.widgets.raster import EXACT_LIMIT, MAX_SELECTED, N_BINS, RasterView
from bokeh.document import Document
from bokeh.embed import json_item
from bokeh.events import Tap
from bokeh.models import ColorBar, HoverTool, SaveTool


def _hover(fig) -> HoverTool:
    return next(x for x in fig.toolbar.tools if isinstance(x, HoverTool))


def _shown(view) -> str:
    """Which figure shows, asserting that panes and figures agree."""
    exact = view._exact_pane.visible
    assert view.exact_fig.visible == exact and view.binned_fig.visible == (not exact)
    assert view._binned_pane.visible == (not exact)
    return "exact" if exact else "binned"


def _tap(fig, y, x=0.1):
    fig._trigger_event(Tap(fig, x=x, y=y))


def _big_snapshot(make_snapshot):
    snap = make_snapshot(sizes=(784, 800, 10), k=30, errors=False)
    assert int(snap.activity[1].counts.sum()) > EXACT_LIMIT
    return snap


def test_empty_state_renders(empty_snapshot):
    view = RasterView()
    view.update([empty_snapshot])  # no activity: nothing changes
    assert len(view.exact_source.data["t"]) == 0
    assert view.binned_source.data["image"] == []
    assert "No spikes" in view.info.object
    assert view.__panel__().get_root(Document()) is not None
    assert view._plots.objects == [] and not view._choices.visible  # the text alone
    for fig in (view.exact_fig, view.binned_fig):
        json.dumps(json_item(fig))  # empty columns serialize


def test_small_layer_is_exact_with_hover_and_save(snapshot):
    view = RasterView()
    view.update([snapshot])
    act = snapshot.activity[1]
    neuron, slot, t = spike_events(act.times, act.counts)
    data = view.exact_source.data
    assert view.mode == _shown(view) == "exact"
    np.testing.assert_array_equal(data["t"], t)  # exact times, not binned
    np.testing.assert_array_equal(data["neuron"], neuron)
    np.testing.assert_array_equal(data["slot"], slot)
    assert any(isinstance(x, SaveTool) for x in view.exact_fig.toolbar.tools)
    hover = _hover(view.exact_fig)
    assert hover.tooltips == [("neuron", "@neuron"), ("slot", "@slot"), ("t (s)", "@t{0.000000}")]
    (glyph,) = [r.glyph for r in hover.renderers]
    assert glyph.marker == "dash" and glyph.angle == pytest.approx(np.pi / 2)
    assert (glyph.x, glyph.y) == ("t", "neuron")
    assert view.exact_fig.xaxis[0].axis_label == "t (s)"
    assert view.exact_fig.yaxis[0].ticker.min_interval == 1  # neuron indices: whole numbers
    assert "dense1" in view.info.object and "exact times" in view.info.object
    assert "Click a neuron" in view.info.object


def test_layer_selection_follows_view_config(snapshot):
    view = RasterView()
    view.update([snapshot])
    assert view.layer_select.options == {"input": 0, "dense1": 1, "output": 2}
    view.view_config.layer = 2
    assert view.layer_select.value == 2
    assert len(view.exact_source.data["t"]) == snapshot.activity[2].counts.sum()
    view.layer_select.value = 0
    assert view.view_config.layer == 0
    assert "input" in view.info.object and "Click a neuron" not in view.info.object
    view.view_config.layer = 9  # clamped to the last layer
    assert view.layer == 2 and view.layer_select.value == 2


def test_layer_without_spikes_gives_empty_columns(make_snapshot):
    snap = make_snapshot()
    act = snap.activity[1]
    silent = LayerActivity(act.name, np.full_like(act.times, np.inf), np.zeros_like(act.counts))
    snap = make_snapshot(activity=(snap.activity[0], silent, snap.activity[2]))
    view = RasterView()
    view.update([snap])
    assert view.mode == "exact"
    assert {k: len(v) for k, v in view.exact_source.data.items()} == {
        "t": 0,
        "neuron": 0,
        "slot": 0,
    }
    json.dumps(json_item(view.exact_fig))


def test_nan_times_are_left_out(make_snapshot):
    snap = make_snapshot()
    act = snap.activity[1]
    times = act.times.copy()
    j = int(np.argmax(act.counts))
    times[j, 0] = np.nan
    bad = LayerActivity(act.name, times, act.counts, act.theta, act.reset, act.n_max)
    view = RasterView()
    view.update([make_snapshot(activity=(snap.activity[0], bad, snap.activity[2]))])
    assert np.isfinite(view.exact_source.data["t"]).all()
    assert len(view.exact_source.data["t"]) == act.counts.sum() - 1
    view.view_config.raster_mode = "binned"  # the binned image leaves it out too
    assert view.binned_source.data["image"][0].sum() == act.counts.sum() - 1


def test_huge_layer_stays_binned_and_small(make_snapshot):
    snap = _big_snapshot(make_snapshot)
    n_spikes = int(snap.activity[1].counts.sum())
    view = RasterView()
    view.update([snap])
    assert view.mode == _shown(view) == "binned"
    assert len(view.exact_source.data["t"]) == 0
    image = view.binned_source.data["image"][0]
    assert image.shape == (800, N_BINS) and image.dtype == np.float32
    assert image.sum() == n_spikes
    assert view.binned_fig.xaxis[0].axis_label == "t (s), binned"
    assert "binned, Δt" in view.info.object
    payload = len(json.dumps(json_item(view.binned_fig)))
    assert payload < 2_000_000  # well under Bokeh's 20 MB websocket frame


def test_binned_colours_and_hover(make_snapshot):
    view = RasterView()
    view.update([_big_snapshot(make_snapshot)])
    image = view.binned_source.data["image"][0]
    assert (view.mapper.low, view.mapper.high) == (0.0, image.max())
    assert view.mapper.palette[0].lower() == "#ffffff"  # empty bins white, full ones black
    assert view.mapper.palette[-1].lower() == "#000000"
    (bar,) = [x for x in view.binned_fig.right if isinstance(x, ColorBar)]
    assert bar.title == "spikes per bin" and bar.color_mapper is view.mapper
    assert ("spikes per bin", "@image") in _hover(view.binned_fig).tooltips
    assert view.binned_fig.yaxis[0].ticker.min_interval == 1


def test_raster_mode_overrides_auto(snapshot):
    view = RasterView()
    view.update([snapshot])
    view.view_config.raster_mode = "binned"
    assert view.mode == _shown(view) == "binned"
    assert view.binned_source.data["image"][0].shape == (12, N_BINS)
    assert len(view.exact_source.data["t"]) == 0  # the hidden plot is emptied
    assert view.mapper.high == 1.0  # at most one spike per bin here
    view.view_config.raster_mode = "exact"
    assert view.mode == _shown(view) == "exact"
    assert view.binned_source.data["image"] == []
    assert len(view.exact_source.data["t"]) == snapshot.activity[1].counts.sum()
    for mode in ("binned", "exact", "binned", "auto", "binned", "exact"):  # toggles both ways
        view.view_config.raster_mode = mode
        assert _shown(view) == view.mode == ("exact" if mode == "auto" else mode)


def test_hidden_source_is_emptied_once_when_the_mode_switches(make_snapshot):
    view = RasterView()
    view.update([make_snapshot()])
    view.view_config.raster_mode = "binned"
    emptied = view.exact_source.data
    view.update([make_snapshot(seed=1)])  # new spikes, still binned
    view.view_config.sample_index = 3
    assert view.exact_source.data is emptied  # not sent again


def test_binned_neuron_j_is_drawn_at_height_j(make_snapshot):
    snap = make_snapshot()
    view = RasterView()
    view.update([snap])
    view.view_config.raster_mode = "binned"
    counts = snap.activity[1].counts
    data = view.binned_source.data
    image = data["image"][0]
    n = len(counts)
    np.testing.assert_array_equal(image.sum(axis=1), counts)  # row j holds neuron j
    # Bokeh draws row 0 at the bottom: row j spans y + j·dh/n .. y + (j + 1)·dh/n
    assert data["y"][0] == -0.5 and data["dh"][0] == n
    centres = data["y"][0] + (np.arange(n) + 0.5) * data["dh"][0] / n
    np.testing.assert_allclose(centres, np.arange(n))
    assert data["x"][0] == 0.0 and data["dw"][0] == pytest.approx(snap.t_max)


def test_tap_selects_neurons_for_the_membrane_view(snapshot):
    view = RasterView()
    view.update([snapshot])
    view.view_config.layer = 2
    _tap(view.exact_fig, y=2.8)
    assert view.view_config.neurons == [3] and view.view_config.layer == 2
    view.add_to_selection = True
    _tap(view.exact_fig, y=1.1)
    assert view.view_config.neurons == [3, 1]
    _tap(view.exact_fig, y=99)  # clamped to the last neuron, moved to the end
    assert view.view_config.neurons == [1, 3]
    _tap(view.exact_fig, y=-4)
    assert view.view_config.neurons == [1, 3, 0]
    view.view_config.raster_mode = "binned"
    view.add_to_selection = False
    _tap(view.binned_fig, y=0.2)
    assert view.view_config.neurons == [0]


def test_add_to_selection_keeps_at_most_max_selected(make_snapshot):
    view = RasterView()
    view.update([make_snapshot()])  # dense1 has 12 neurons
    view.add_to_selection = True
    for j in range(MAX_SELECTED + 3):
        _tap(view.exact_fig, y=j)
    assert view.view_config.neurons == list(range(3, MAX_SELECTED + 3))
    assert view.view_config.layer == 1


def test_tap_on_input_layer_or_before_data_is_ignored(snapshot):
    view = RasterView()
    _tap(view.exact_fig, y=2)  # nothing drawn yet
    assert view.view_config.neurons == [0]
    view.update([snapshot])
    view.view_config.layer = 0
    _tap(view.exact_fig, y=5)
    assert view.view_config.neurons == [0] and view.view_config.layer == 0
    _tap(view.exact_fig, y=None)


def test_tap_reaches_the_view_through_a_document(snapshot):
    view = RasterView()
    doc = Document()
    doc.add_root(view.__panel__().get_root(doc))
    assert "exact_fig" not in view.__dict__  # a page opens without a figure
    view.update([snapshot])  # the first spikes build it, in the page's document
    assert view.exact_fig.document is doc and "tap" in view.exact_fig.subscribed_events
    _tap(view.exact_fig, y=4)
    assert view.view_config.neurons == [4]


def test_svg_export_switches_the_backend(snapshot):
    view = RasterView()
    view.update([snapshot])
    figs = (view.exact_fig, view.binned_fig)
    assert all(f.output_backend == "canvas" for f in figs)
    view.view_config.svg_export = True
    assert all(f.output_backend == "svg" for f in figs)
    view.view_config.svg_export = False
    assert all(f.output_backend == "canvas" for f in figs)


def test_reset_empties_the_raster(make_snapshot):
    view = RasterView()
    view.update([_big_snapshot(make_snapshot)])
    view.reset()
    assert len(view.exact_source.data["t"]) == 0 and view.binned_source.data["image"] == []
    assert not any(p.visible for p in view._plots.objects) and not view._choices.visible
    assert "No spikes" in view.info.object
    view.update([make_snapshot()])
    assert len(view.exact_source.data["t"]) > 0
    assert view.mode == _shown(view) == "exact" and view._choices.visible
    assert view._plots.objects == [view._exact_pane, view._binned_pane]  # placed when built


def test_views_build_in_a_fresh_process():
    """The factory may build views before anything else of the app ran (no extension, no
    warm-up)."""
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
    first = make_snapshot(step=1)
    view.update([first])
    sent = view.exact_source.data
    view.update([first])  # the same snapshot: skipped before any work
    view.update([make_snapshot(step=2)])  # a new snapshot with the same spikes: no redraw
    assert view.exact_source.data is sent
    view.update([make_snapshot(seed=1)])
    assert view.exact_source.data is not sent


def test_figures_and_renderers_are_built_once(make_snapshot):
    view = RasterView()
    before = [list(f.renderers) for f in (view.exact_fig, view.binned_fig)]
    view.update([make_snapshot()])
    view.view_config.raster_mode = "binned"
    view.update([_big_snapshot(make_snapshot)])
    view.reset()
    assert [list(f.renderers) for f in (view.exact_fig, view.binned_fig)] == before
    assert view._exact_pane.object is view.exact_fig
    assert view._binned_pane.object is view.binned_fig
