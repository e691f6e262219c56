"""MembraneView: exact u(t) per selected neuron, θ and reset lines, spikes marked at θ."""

import json

import numpy as np
from batscope.training.telemetry import MembraneWindow
from batscope.widgets.membrane import EMPTY_TEXT, MAX_POINTS, MembraneView
from batscope.widgets.raster import MAX_SELECTED
from bokeh.document import Document
from bokeh.embed import json_item
from bokeh.models import HoverTool, HSpan, Legend, SaveTool


def _legend(view) -> list[str]:
    """The visible legend labels, in order."""
    (legend,) = [x for x in view.fig.right if isinstance(x, Legend)]
    return [item.label.value for item in legend.items if item.visible]


def _lengths(view) -> list[int]:
    return [len(src.data["t"]) for src in view.trace_sources]


def _window(neurons, t=None, theta=0.3, reset=0.3, layer=1):
    t = np.linspace(0, 0.2, 300) if t is None else t
    u = np.sin(np.outer(np.arange(len(neurons)) + 1, t) * 40) * theta
    return MembraneWindow(layer, np.array(neurons), t, u, theta, reset)


def test_empty_state_renders(empty_snapshot):
    view = MembraneView()
    view.update([empty_snapshot])
    assert _lengths(view) == [0] * MAX_SELECTED
    assert len(view.spike_source.data["t"]) == 0
    assert len(view.theta_source.data["y"]) == 0 and len(view.reset_source.data["y"]) == 0
    assert _legend(view) == ["θ", "θ − Δθ", "spikes"]
    assert view.info.object == EMPTY_TEXT
    assert view.__panel__().get_root(Document()) is not None
    json.dumps(json_item(view.fig))  # empty columns serialize


def test_traces_threshold_and_spikes(snapshot):
    view = MembraneView()
    view.update([snapshot])
    m = snapshot.membrane
    assert _lengths(view) == [m.t.size] * 2 + [0] * (MAX_SELECTED - 2)
    for i in range(2):
        data = view.trace_sources[i].data
        np.testing.assert_array_equal(data["t"], m.t)
        np.testing.assert_allclose(data["u"], m.u[i])
        assert np.all(data["neuron"] == m.neurons[i])
    assert list(view.theta_source.data["y"]) == [m.theta]
    assert list(view.reset_source.data["y"]) == [m.theta - m.reset]
    act = snapshot.activity[m.layer]
    n_spikes = int(act.counts[list(m.neurons)].sum())
    spikes = view.spike_source.data
    assert len(spikes["t"]) == n_spikes and np.all(spikes["u"] == m.theta)
    for n in m.neurons:  # each neuron's spikes, with its index for the hover
        assert np.sum(spikes["neuron"] == n) == act.counts[n]
    assert _legend(view) == ["neuron 0", "neuron 1", "θ", "θ − Δθ", "spikes"]
    assert "θ = 0.3" in view.info.object and "Δθ = 0.3" in view.info.object
    json.dumps(json_item(view.fig))


def test_styles_and_hover():
    view = MembraneView()
    fig = view.fig
    colours = [r.glyph.line_color for r in view.traces]
    assert len(set(colours)) == MAX_SELECTED  # one colour per pool line
    theta, reset_level = (r for r in fig.renderers if isinstance(r.glyph, HSpan))
    assert theta.data_source is view.theta_source
    assert (theta.glyph.line_color, theta.glyph.line_dash) == ("firebrick", "dashed")
    assert reset_level.data_source is view.reset_source
    assert (reset_level.glyph.line_color, reset_level.glyph.line_dash) == ("grey", "dotted")
    hovers = [x for x in fig.toolbar.tools if isinstance(x, HoverTool)]
    trace_hover, spike_hover = hovers
    assert trace_hover.renderers == view.traces
    assert ("t (s)", "@t{0.000000}") in trace_hover.tooltips
    assert spike_hover.tooltips == [("neuron", "@neuron"), ("t (s)", "@t{0.000000}")]
    (spikes,) = spike_hover.renderers
    assert spikes.glyph.marker == "triangle" and spikes.data_source is view.spike_source
    assert any(isinstance(x, SaveTool) for x in fig.toolbar.tools)
    assert (fig.xaxis[0].axis_label, fig.yaxis[0].axis_label) == ("t (s)", "u(t)")


def test_legend_follows_the_neurons(make_snapshot):
    view = MembraneView()
    renderers = list(view.fig.renderers)
    view.update([make_snapshot()])
    view.update([make_snapshot(membrane=_window([3, 4, 5]))])
    assert _lengths(view)[:4] == [300, 300, 300, 0]
    assert _legend(view)[:3] == ["neuron 3", "neuron 4", "neuron 5"]
    assert np.all(view.trace_sources[2].data["neuron"] == 5)
    view.update([make_snapshot(membrane=_window([7]))])
    assert _legend(view) == ["neuron 7", "θ", "θ − Δθ", "spikes"]
    assert _lengths(view)[:3] == [300, 0, 0]
    assert list(view.fig.renderers) == renderers  # the pool, never rebuilt


def test_legend_labels_are_sent_only_when_they_change(make_snapshot):
    view = MembraneView()
    view.update([make_snapshot()])
    labels = [item.label for item in view.trace_items]
    view.update([make_snapshot(membrane=_window([0, 1], theta=0.4))])
    assert all(a is item.label for a, item in zip(labels, view.trace_items, strict=True))
    assert list(view.theta_source.data["y"]) == [0.4]


def test_more_neurons_than_the_pool(make_snapshot):
    neurons = list(range(MAX_SELECTED + 2))
    view = MembraneView()
    view.view_config.neurons = neurons
    view.update([make_snapshot(membrane=_window(neurons))])
    assert _lengths(view) == [300] * MAX_SELECTED
    assert _legend(view)[MAX_SELECTED - 1] == f"neuron {MAX_SELECTED - 1}"
    assert view.spike_source.data["neuron"].max() < MAX_SELECTED
    assert f"The first {MAX_SELECTED} are drawn." in view.info.object
    assert "shown from the next update" not in view.info.object


def test_long_traces_are_decimated(make_snapshot):
    t = np.linspace(0, 1, 50_000)
    u = np.sin(50 * t)[None, :].repeat(2, 0)
    u[0, 25_000] = -1.0  # a reset drop survives
    window = MembraneWindow(1, np.array([0, 1]), t, u, 0.3, 0.3)
    view = MembraneView()
    view.update([make_snapshot(membrane=window)])
    data = view.trace_sources[0].data
    assert data["t"].size <= 2 * MAX_POINTS and data["u"].min() == -1.0


def test_nan_in_trace_does_not_break_rendering(make_snapshot):
    snap = make_snapshot()
    u = snap.membrane.u.copy()
    u[0, 10:20] = np.nan
    m = snap.membrane
    window = MembraneWindow(m.layer, m.neurons, m.t, u, m.theta, m.reset)
    view = MembraneView()
    view.update([make_snapshot(membrane=window)])
    assert np.isnan(view.trace_sources[0].data["u"]).sum() == 10
    json.dumps(json_item(view.fig))


def test_window_outside_the_layers_has_no_spikes(make_snapshot):
    view = MembraneView()
    view.update([make_snapshot(membrane=_window([0, 1], layer=7))])
    assert _lengths(view)[:2] == [300, 300]
    assert len(view.spike_source.data["t"]) == 0


def test_selection_change_is_announced(snapshot):
    view = MembraneView()
    view.view_config.neurons = [7]  # nothing drawn yet: no note
    assert view.info.object == EMPTY_TEXT
    view.update([snapshot])
    assert "neurons [7]: shown from the next update" in view.info.object
    view.view_config.neurons = [1, 0]
    assert "next update" not in view.info.object
    view.view_config.layer = 2
    assert "Selected layer 2, neurons [0, 1]" in view.info.object


def test_same_snapshot_sends_nothing(make_snapshot):
    view = MembraneView()
    first = make_snapshot(step=1)
    view.update([first])
    sources = [*view.trace_sources, view.theta_source, view.reset_source, view.spike_source]
    sent = [src.data for src in sources]
    view.update([first])  # the same window object: skipped
    view.update([make_snapshot(step=2)])  # equal data in a new snapshot: nothing sent
    assert all(src.data is old for src, old in zip(sources, sent, strict=True))
    view.update([make_snapshot(membrane=_window([0, 1], theta=0.5))])
    assert view.theta_source.data is not sent[MAX_SELECTED]


def test_reset_and_svg(snapshot):
    view = MembraneView()
    view.update([snapshot])
    assert view.fig.output_backend == "canvas"
    view.view_config.svg_export = True
    assert view.fig.output_backend == "svg"
    view.reset()
    assert _lengths(view) == [0] * MAX_SELECTED
    assert len(view.spike_source.data["t"]) == 0 and len(view.theta_source.data["y"]) == 0
    assert _legend(view) == ["θ", "θ − Δθ", "spikes"]
    assert view.info.object == EMPTY_TEXT
    view.view_config.svg_export = False
    assert view.fig.output_backend == "canvas"
    view.update([snapshot])  # the same window draws again after a reset
    assert _lengths(view)[:2] == [300, 300]
