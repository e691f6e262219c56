"""ErrorFlowView: δ per spike on a diverging scale, Σφ/Σμ bars, the reset-path share, timelines."""

import holoviews as hv
import numpy as np
import pytest
from batscope.engine.analysis import emitted, error_share
from batscope.engine.telemetry import ErrorFlow
from batscope.widgets.errorflow import ErrorFlowView
from batscope.widgets.raster import N_BINS


def test_explanatory_empty_state(render, make_snapshot):
    view = ErrorFlowView()
    view.update([make_snapshot(errors=False)])  # forward only: no backward pass yet
    assert "No error flow yet" in view.info.object and "μ_k = α_k·β_k" in view.info.object
    for dmap in (view.points, view.image, view.bars, view.timeline):
        render(dmap)
    assert isinstance(view.points[()], hv.Points)
    assert view.__panel__().get_root() is not None


def test_points_coloured_by_delta_symmetric(render, snapshot):
    view = ErrorFlowView()
    plot = render(view.points)
    view.update([snapshot])
    flow = snapshot.errors[0]
    act = snapshot.activity[flow.layer]
    mask = emitted(act.times, act.counts)
    data = plot.handles["source"].data
    np.testing.assert_allclose(np.sort(data["delta"]), np.sort(flow.delta[mask]))
    np.testing.assert_allclose(data["delta"], data["phi"] + data["mu"])
    mapper = plot.handles["color_color_mapper"]
    m = np.abs(flow.delta[mask]).max()
    assert mapper.low == pytest.approx(-m) and mapper.high == pytest.approx(m)
    big = np.argmax(np.abs(data["delta"]))
    assert data["size"][big] == data["size"].max()  # sized by |δ|


def test_share_and_signed_bars(render, snapshot):
    view = ErrorFlowView()
    bars = render(view.bars)
    view.update([snapshot])
    flow = snapshot.errors[0]
    counts = snapshot.activity[flow.layer].counts
    share = error_share(flow.phi, flow.mu, counts)
    assert f"{share:.3f}" in view.info.object
    phi_plot, mu_plot = bars.subplots.values()
    phi_top = phi_plot.handles["source"].data["y1"]
    slot = np.arange(flow.phi.shape[1]) < counts[:, None]
    np.testing.assert_allclose(phi_top, np.where(slot, flow.phi, 0).sum(1))
    np.testing.assert_allclose(
        mu_plot.handles["source"].data["y1"], np.where(slot, flow.mu, 0).sum(1)
    )
    assert (phi_top < 0).any() and (phi_top > 0).any()  # signs are kept


def test_timeline_of_selected_neurons(render, snapshot):
    view = ErrorFlowView()
    plot = render(view.timeline)
    flow = snapshot.errors[0]
    counts = snapshot.activity[1].counts
    j = int(np.argmax(counts))
    view.view_config.param.update(layer=1, neurons=[j])
    view.update([snapshot])
    phi, mu, delta = (s.handles["source"].data for s in plot.subplots.values())
    np.testing.assert_allclose(phi["value"], flow.phi[j, : counts[j]])
    np.testing.assert_allclose(mu["value"], flow.mu[j, : counts[j]])
    np.testing.assert_allclose(delta["k"], np.arange(counts[j]))
    assert f"neurons [{j}]" in view.info.object


def test_layer_follows_view_config(snapshot):
    view = ErrorFlowView()
    view.update([snapshot])
    assert "(layer 1)" in view.info.object
    view.view_config.layer = 2
    assert "(layer 2)" in view.info.object
    view.view_config.layer = 0  # the input layer has no errors: the last layer is shown
    assert "(layer 2)" in view.info.object


def test_single_spike_share_is_zero(make_snapshot):
    snap = make_snapshot()
    flows = tuple(ErrorFlow(f.layer, f.phi, np.zeros_like(f.mu), f.phi) for f in snap.errors)
    view = ErrorFlowView()
    view.update([make_snapshot(errors=flows)])
    assert "= **0.000**" in view.info.object


def test_nan_errors_are_reported_not_fatal(render, make_snapshot):
    snap = make_snapshot()
    f = snap.errors[0]
    counts = snap.activity[1].counts
    j = int(np.argmax(counts))
    delta = f.delta.copy()
    delta[j, 0] = np.nan
    view = ErrorFlowView()
    plot = render(view.points)
    view.update([make_snapshot(errors=(ErrorFlow(1, f.phi, f.mu, delta), snap.errors[1]))])
    assert "1 non-finite δ" in view.info.object
    mapper = plot.handles["color_color_mapper"]
    assert np.isfinite(mapper.low) and mapper.low == -mapper.high


def test_big_layer_uses_binned_image(render, make_snapshot):
    snap = make_snapshot(sizes=(50, 800, 10), k=30)
    view = ErrorFlowView()
    points, image = render(view.points), render(view.image)
    view.update([snap])
    assert view.mode == "binned" and view._image_pane.visible
    assert len(points.handles["source"].data["t"]) == 0
    img = image.handles["source"].data["image"][0]
    assert img.shape == (800, N_BINS)
    f = snap.errors[0]
    mask = emitted(snap.activity[1].times, snap.activity[1].counts)
    assert img.sum() == pytest.approx(f.delta[mask].sum(), rel=1e-4, abs=1e-3)
    mapper = image.handles["color_mapper"]
    assert mapper.low == -mapper.high


def test_reset_returns_to_empty_state(render, snapshot):
    view = ErrorFlowView()
    plot = render(view.points)
    view.update([snapshot])
    view.reset()
    assert len(plot.handles["source"].data["t"]) == 0
    assert "No error flow yet" in view.info.object
