"""ErrorFlowView: δ per spike on a diverging scale, Σφ/Σμ bars, the reset-path share, timelines."""

import numpy as np
import pytest
from batscope.engine.analysis import bin_raster, emitted, error_share
from batscope.training.telemetry import ErrorFlow
from batscope.widgets.errorflow import ErrorFlowView
from batscope.widgets.live import glyphs
from batscope.widgets.raster import N_BINS
from bokeh.document import Document
from bokeh.embed import json_item
from bokeh.models import ColorBar, HoverTool


def _figures(view):
    return (view.points_fig, view.image_fig, view.bars_fig, view.timeline_fig)


def _sources(view):
    return [
        view.points_source,
        view.image_source,
        *view.bar_sources.values(),
        *view.timeline_sources.values(),
    ]


def _tooltips(fig):
    return [tip for tool in fig.select(type=HoverTool) for tip in tool.tooltips]


def _with_nan_delta(make_snapshot):
    """A snapshot whose layer-1 δ is NaN on the first spike of its busiest neuron ``j``."""
    snap = make_snapshot()
    f = snap.errors[0]
    j = int(np.argmax(snap.activity[1].counts))
    delta = f.delta.copy()
    delta[j, 0] = np.nan
    return make_snapshot(errors=(ErrorFlow(1, f.phi, f.mu, delta), snap.errors[1])), j


def test_explanatory_empty_state(make_snapshot):
    view = ErrorFlowView()
    view.update([make_snapshot(errors=False)])  # forward only: no backward pass yet
    assert "No error flow yet" in view.info.object and "μ_k = α_k·β_k" in view.info.object
    assert all(len(col) == 0 for s in _sources(view) for col in s.data.values())
    assert view.__panel__().get_root(Document()) is not None
    for fig in _figures(view):
        json_item(fig)  # empty columns serialize


def test_points_coloured_by_delta_symmetric(snapshot):
    view = ErrorFlowView()
    view.update([snapshot])
    flow = snapshot.errors[0]
    act = snapshot.activity[flow.layer]
    mask = emitted(act.times, act.counts)
    data = view.points_source.data
    np.testing.assert_allclose(np.sort(data["delta"]), np.sort(flow.delta[mask]))
    np.testing.assert_allclose(data["delta"], data["phi"] + data["mu"])
    np.testing.assert_array_equal(data["t"], act.times[data["neuron"], data["slot"]])
    mapper = view.points_mapper
    m = np.abs(flow.delta[mask]).max()
    assert mapper.low == pytest.approx(-m) and mapper.high == pytest.approx(m)
    big = np.argmax(np.abs(data["delta"]))
    assert data["size"][big] == data["size"].max() == pytest.approx(18)  # sized by |δ|
    assert data["size"].min() >= 4
    (glyph,) = [r.glyph for r in glyphs(view.points_fig)]
    assert glyph.fill_color.field == "delta" and glyph.fill_color.transform is mapper
    assert glyph.line_color == "black"
    tips = dict(_tooltips(view.points_fig))
    assert tips["t (s)"] == "@t{0.000000}" and tips["μ = αβ"] == "@mu"
    assert view.points_fig.title.text == "δ_k per spike (colour: sign, size: |δ|)"
    (bar,) = view.points_fig.select(type=ColorBar)
    assert bar.color_mapper is mapper and bar.title == "δ"


def test_share_and_signed_bars(snapshot):
    view = ErrorFlowView()
    view.update([snapshot])
    flow = snapshot.errors[0]
    counts = snapshot.activity[flow.layer].counts
    share = error_share(flow.phi, flow.mu, counts)
    assert f"{share:.3f}" in view.info.object
    phi, mu = view.bar_sources["φ"].data, view.bar_sources["μ"].data
    slot = np.arange(flow.phi.shape[1]) < counts[:, None]
    np.testing.assert_allclose(phi["top"], np.where(slot, flow.phi, 0).sum(1))
    np.testing.assert_allclose(mu["top"], np.where(slot, flow.mu, 0).sum(1))
    assert (phi["top"] < 0).any() and (phi["top"] > 0).any()  # signs are kept
    n = np.arange(counts.size)
    np.testing.assert_allclose(phi["left"], n - 0.4)
    np.testing.assert_allclose(phi["right"], n)
    np.testing.assert_allclose(mu["left"], n)
    np.testing.assert_allclose(mu["right"], n + 0.4)
    assert not phi["bottom"].any() and not mu["bottom"].any()
    labels = [item.label["value"] for item in view.bars_fig.legend[0].items]
    assert labels == ["Σφ", "Σμ"]
    assert ("Σμ", "@top") in _tooltips(view.bars_fig)


def test_timeline_of_selected_neurons(snapshot):
    view = ErrorFlowView()
    flow = snapshot.errors[0]
    counts = snapshot.activity[1].counts
    j = int(np.argmax(counts))
    view.view_config.param.update(layer=1, neurons=[j])
    view.update([snapshot])
    phi, mu, delta = (view.timeline_sources[c].data for c in ("φ", "μ", "δ"))
    np.testing.assert_allclose(phi["value"], flow.phi[j, : counts[j]])
    np.testing.assert_allclose(mu["value"], flow.mu[j, : counts[j]])
    np.testing.assert_allclose(delta["value"], flow.delta[j, : counts[j]])
    np.testing.assert_allclose(delta["k"], np.arange(counts[j]))
    assert (delta["neuron"] == j).all()
    assert f"neurons [{j}]" in view.info.object
    markers = [r.glyph.marker for r in glyphs(view.timeline_fig)]
    assert markers == ["circle", "square", "diamond"]
    labels = [item.label["value"] for item in view.timeline_fig.legend[0].items]
    assert labels == ["φ", "μ", "δ"]
    assert ("k", "@k") in _tooltips(view.timeline_fig)


def _busiest(snapshot, index):
    """The neuron with the largest Σ|δ| over emitted spikes in ``snapshot.errors[index]``."""
    flow = snapshot.errors[index]
    act = snapshot.activity[flow.layer]
    mask = emitted(act.times, act.counts)
    return int(np.argmax(np.abs(np.where(mask, flow.delta, 0)).sum(1)))


def test_timeline_defaults_to_the_neuron_with_most_error(snapshot):
    view = ErrorFlowView()
    view.view_config.neurons = []  # no neurons chosen: the view picks one
    view.update([snapshot])
    j = _busiest(snapshot, 0)
    assert f"neurons [{j}]" in view.info.object
    assert (view.timeline_sources["φ"].data["neuron"] == j).all()
    # neurons chosen for the input layer (no errors) do not apply to the layer shown (the last)
    view.view_config.param.update(layer=0, neurons=[3])
    assert "(layer 2)" in view.info.object
    assert f"neurons [{_busiest(snapshot, 1)}]" in view.info.object


def test_silent_chosen_neuron_is_noted(snapshot):
    counts = snapshot.activity[1].counts
    silent = int(np.flatnonzero(counts == 0)[0])
    view = ErrorFlowView()
    view.view_config.param.update(layer=1, neurons=[silent])
    view.update([snapshot])
    assert "(silent: no spikes, so no errors)" in view.info.object
    assert len(view.timeline_sources["δ"].data["k"]) == 0


def test_layer_follows_view_config(snapshot):
    view = ErrorFlowView()
    view.update([snapshot])
    assert "(layer 1)" in view.info.object
    view.view_config.layer = 2
    assert "(layer 2)" in view.info.object
    assert len(view.bar_sources["φ"].data["top"]) == snapshot.activity[2].counts.size
    view.view_config.layer = 0  # the input layer has no errors: the last layer is shown
    assert "(layer 2)" in view.info.object


def test_single_spike_share_is_zero(make_snapshot):
    snap = make_snapshot()
    flows = tuple(ErrorFlow(f.layer, f.phi, np.zeros_like(f.mu), f.phi) for f in snap.errors)
    view = ErrorFlowView()
    view.update([make_snapshot(errors=flows)])
    assert "= **0.000**" in view.info.object


def test_nan_errors_are_grey_and_counted(make_snapshot):
    snap, j = _with_nan_delta(make_snapshot)
    view = ErrorFlowView()
    view.update([snap])
    assert "1 non-finite δ" in view.info.object
    mapper = view.points_mapper
    assert np.isfinite(mapper.low) and mapper.low == -mapper.high
    assert mapper.nan_color == "#bbbbbb"  # the NaN marker is drawn grey
    data = view.points_source.data
    nan = np.isnan(data["delta"])
    assert nan.sum() == 1 and data["neuron"][nan][0] == j and data["slot"][nan][0] == 0
    assert data["size"][nan][0] == 4 and np.isfinite(data["size"]).all()
    for fig in _figures(view):
        json_item(fig)  # NaN columns serialize


def test_big_layer_uses_binned_image(make_snapshot):
    snap = make_snapshot(sizes=(50, 800, 10), k=30)
    view = ErrorFlowView()
    view.update([snap])
    assert view.mode == "binned" and view._image_pane.visible
    assert not view._points_pane.visible
    assert len(view.points_source.data["t"]) == 0
    img = view.image_source.data["image"][0]
    assert img.shape == (800, N_BINS)
    f = snap.errors[0]
    mask = emitted(snap.activity[1].times, snap.activity[1].counts)
    assert img.sum() == pytest.approx(f.delta[mask].sum(), rel=1e-4, abs=1e-3)
    mapper = view.image_mapper
    assert mapper.low == -mapper.high == pytest.approx(-np.abs(img).max(), rel=1e-6)


def test_binned_image_row_j_is_neuron_j(make_snapshot):
    """Bokeh draws image row 0 at the bottom: no flip, neuron j at height j."""
    snap = make_snapshot(sizes=(50, 800, 10), k=30)
    view = ErrorFlowView()
    view.update([snap])
    act, f = snap.activity[1], snap.errors[0]
    _, expected = bin_raster(act.times, act.counts, snap.t_max, N_BINS, weights=f.delta)
    data = view.image_source.data
    np.testing.assert_allclose(data["image"][0], expected, rtol=1e-5, atol=1e-6)
    j = int(np.argmax(act.counts))
    mask = emitted(act.times, act.counts)
    assert data["image"][0][j].sum() == pytest.approx(f.delta[j][mask[j]].sum(), rel=1e-4)
    assert data["x"][0] == 0 and data["dw"][0] == pytest.approx(snap.t_max)
    assert data["y"][0] == -0.5 and data["dh"][0] == 800  # bounds (0, -0.5, t_max, N - 0.5)


def test_mode_switch_empties_the_hidden_plot(snapshot):
    view = ErrorFlowView()
    view.update([snapshot])
    assert view.mode == "exact" and len(view.points_source.data["t"]) > 0
    view.view_config.raster_mode = "binned"
    assert view.mode == "binned" and view._image_pane.visible and not view._points_pane.visible
    assert len(view.points_source.data["t"]) == 0
    assert view.image_source.data["image"][0].shape == (snapshot.activity[1].counts.size, N_BINS)
    view.view_config.raster_mode = "exact"
    assert view._points_pane.visible and not view._image_pane.visible
    assert len(view.image_source.data["image"]) == 0
    assert len(view.points_source.data["t"]) > 0


def test_same_snapshot_sends_nothing(make_snapshot):
    view = ErrorFlowView()
    view.update([make_snapshot(step=1)])
    sent = []
    for source in _sources(view):
        source.on_change("data", lambda attr, old, new: sent.append(attr))
    for mapper in (view.points_mapper, view.image_mapper):
        mapper.on_change("low", lambda attr, old, new: sent.append(attr))
    datas = [s.data for s in _sources(view)]
    view.update([view._snapshot])  # the same snapshot: skipped
    view.update([make_snapshot(step=2)])  # a new snapshot with equal errors: nothing sent
    assert sent == [] and all(s.data is d for s, d in zip(_sources(view), datas, strict=True))
    assert "step 2" in view.info.object
    view.update([make_snapshot(seed=1)])
    assert "data" in sent and "low" in sent


def test_svg_export_follows_view_config(snapshot):
    view = ErrorFlowView()
    view.update([snapshot])
    assert all(fig.output_backend == "canvas" for fig in _figures(view))
    view.view_config.svg_export = True
    assert all(fig.output_backend == "svg" for fig in _figures(view))
    view.view_config.svg_export = False
    assert all(fig.output_backend == "canvas" for fig in _figures(view))


def test_reset_returns_to_empty_state(make_snapshot):
    view = ErrorFlowView()
    view.update([make_snapshot(sizes=(50, 800, 10), k=30)])
    view.reset()
    assert view.mode == "exact" and view._points_pane.visible and not view._image_pane.visible
    assert all(len(col) == 0 for s in _sources(view) for col in s.data.values())
    assert "No error flow yet" in view.info.object
