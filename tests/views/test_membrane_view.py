"""MembraneView: exact u(t) per selected neuron, θ and reset lines, spikes marked at θ."""

import holoviews as hv
import numpy as np
from batscope.engine.telemetry import MembraneWindow
from batscope.widgets.membrane import MAX_POINTS, MembraneView


def _subplots(plot):
    curves, theta, reset_level, spikes = plot.subplots.values()
    return curves, theta, reset_level, spikes


def _layers(view):
    """The elements of the current frame: curves (NdOverlay), θ, θ − Δθ, spikes."""
    return list(view.dmap[()])


def test_empty_state_renders(render, empty_snapshot):
    view = MembraneView()
    view.update([empty_snapshot])
    plot = render(view.dmap)
    curves, *_ = _subplots(plot)
    assert list(curves.subplots) == [(-1,)]  # the empty placeholder curve
    assert isinstance(_layers(view)[0], hv.NdOverlay)
    assert view.__panel__().get_root() is not None
    assert "No membrane trace" in view.info.object


def test_traces_threshold_and_spikes(render, snapshot):
    view = MembraneView()
    plot = render(view.dmap)
    view.update([snapshot])
    m = snapshot.membrane
    assert sorted(view.pipe.data["traces"]) == [0, 1]
    np.testing.assert_allclose(view.pipe.data["traces"][1][1], m.u[1])
    _, theta, reset_level, _ = _layers(view)
    assert theta.data == m.theta
    assert reset_level.data == m.theta - m.reset
    act = snapshot.activity[m.layer]
    n_spikes = int(act.counts[list(m.neurons)].sum())
    _, _, _, spikes = _subplots(plot)
    data = spikes.handles["source"].data
    assert len(data["t"]) == n_spikes and np.all(data["u"] == m.theta)
    visible = [r.visible for r in plot.state.renderers if hasattr(r, "visible")]
    assert sum(visible) >= 3  # two traces and the spike markers
    assert "θ = 0.3" in view.info.object


def test_new_neurons_get_new_curves(render, make_snapshot):
    view = MembraneView()
    plot = render(view.dmap)
    view.update([make_snapshot()])
    snap = make_snapshot()
    t = snap.membrane.t
    window = MembraneWindow(1, np.array([3, 4, 5]), t, np.zeros((3, t.size)), 0.3, 0.3)
    view.update([make_snapshot(membrane=window)])
    curves, *_ = _subplots(plot)
    assert {(3,), (4,), (5,)} <= set(curves.subplots)
    assert isinstance(_layers(view)[0], hv.NdOverlay)


def test_long_traces_are_decimated(make_snapshot):
    t = np.linspace(0, 1, 50_000)
    u = np.sin(50 * t)[None, :].repeat(2, 0)
    u[0, 25_000] = -1.0  # a reset drop survives
    window = MembraneWindow(1, np.array([0, 1]), t, u, 0.3, 0.3)
    view = MembraneView()
    view.update([make_snapshot(membrane=window)])
    tt, uu = view.pipe.data["traces"][0]
    assert tt.size <= 2 * MAX_POINTS and uu.min() == -1.0


def test_nan_in_trace_does_not_break_rendering(render, make_snapshot):
    snap = make_snapshot()
    u = snap.membrane.u.copy()
    u[0, 10:20] = np.nan
    m = snap.membrane
    window = MembraneWindow(m.layer, m.neurons, m.t, u, m.theta, m.reset)
    view = MembraneView()
    plot = render(view.dmap)
    view.update([make_snapshot(membrane=window)])
    curves, *_ = _subplots(plot)
    assert np.isnan(curves.subplots[(0,)].handles["source"].data["u"]).sum() == 10


def test_selection_change_is_announced(snapshot):
    view = MembraneView()
    view.update([snapshot])
    view.view_config.neurons = [7]
    assert "neurons [7]: shown from the next update" in view.info.object


def test_reset_and_svg(render, snapshot):
    view = MembraneView()
    plot = render(view.dmap)
    view.update([snapshot])
    view.view_config.svg_export = True
    assert plot.state.output_backend == "svg"
    view.reset()
    assert view.pipe.data["traces"] == {}
    assert "No membrane trace" in view.info.object
