"""Membrane potential u(t) of the selected neurons, with θ, the reset level and the spikes.

The engine evaluates u(t) in closed form from the stored spikes (docs/model.md §3,
docs/forward.md §4), so the trace is exact: it reaches θ at each spike time and drops by Δθ there (u
← u − Δθ, docs/model.md §2). Long traces are shortened by min/max decimation, which keeps the
crossings and the reset drops.

The view draws with Bokeh sources fed on each update (see ``widgets/live.py``): a fixed pool of
:data:`MAX_SELECTED` line renderers, one per selected neuron.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import panel as pn
from batscope.engine.analysis import decimate_minmax, spike_events
from bokeh.core.properties import value
from bokeh.models import ColumnDataSource, Legend, LegendItem
from bokeh.palettes import Category10

from .base import PlotView
from .live import LinePool, LiveText, add_hover, bokeh_pane, feed
from .raster import MAX_SELECTED

MAX_POINTS = 2_000  # per trace, after decimation
EMPTY_TEXT = "No membrane trace yet: start or step training, then click a neuron in the raster."
COLORS = Category10[MAX_SELECTED]


def _empty_trace() -> dict:
    return {"t": np.zeros(0), "u": np.zeros(0), "neuron": np.zeros(0, np.int64)}


def _level(y: float) -> dict:
    """Columns of a horizontal line at ``y`` (none when ``y`` is not finite)."""
    return {"y": np.array([y] if np.isfinite(y) else [], dtype=np.float64)}


class _OnFigure:
    """A part of the figure (a source, the line pool): reading it builds the figure, which
    sets it on the view."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, view, owner=None):
        if view is None:
            return self
        view.fig  # noqa: B018  (builds the figure and its parts)
        return view.__dict__[self.name]


class MembraneView(PlotView):
    """u(t) per selected neuron (one colour each), θ and θ − Δθ lines, spikes marked at θ."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self.info = LiveText(EMPTY_TEXT)
        self.view_config.param.watch(self._note_selection, ["layer", "neurons"])
        self._window = self._membrane = None
        self._layout = pn.Column(self.info, sizing_mode="stretch_width")

    # -- the figure, built with the first trace --------------------------------------------------
    # until then the text says there is none, and a session opens without the figure's ~150
    # Bokeh models (each costs the server at every opening)
    pool = _OnFigure()
    trace_sources = _OnFigure()
    traces = _OnFigure()
    trace_items = _OnFigure()
    theta_source = _OnFigure()
    reset_source = _OnFigure()
    spike_source = _OnFigure()

    @cached_property
    def fig(self):
        """u(t) of up to :data:`MAX_SELECTED` neurons, θ and θ − Δθ, spikes marked at θ."""
        fig = self.figure("", "t (s)", "u(t)", height=320)
        self.pool = LinePool(fig, MAX_SELECTED, "t", "u", ("neuron",), COLORS, line_width=1.5)
        self.trace_sources, self.traces, self.trace_items = (
            self.pool.sources,
            self.pool.lines,
            self.pool.items,
        )
        self.theta_source = ColumnDataSource(_level(np.nan))
        self.reset_source = ColumnDataSource(_level(np.nan))
        theta = fig.hspan(
            y="y",
            source=self.theta_source,
            line_color="firebrick",
            line_dash="dashed",
            line_width=1.5,
        )
        reset_level = fig.hspan(
            y="y", source=self.reset_source, line_color="grey", line_dash="dotted", line_width=1
        )
        self.spike_source = ColumnDataSource(_empty_trace())
        spikes = fig.scatter(
            "t", "u", source=self.spike_source, marker="triangle", size=9, color="firebrick"
        )
        add_hover(
            fig,
            self.traces,
            [("neuron", "@neuron"), ("t (s)", "@t{0.000000}"), ("u(t)", "@u{0.0000}")],
        )
        add_hover(fig, [spikes], [("neuron", "@neuron"), ("t (s)", "@t{0.000000}")])
        fixed = [
            LegendItem(label=value(text), renderers=[r])
            for text, r in (("θ", theta), ("θ − Δθ", reset_level), ("spikes", spikes))
        ]
        fig.add_layout(Legend(items=self.trace_items + fixed), "right")
        return fig

    @cached_property
    def _plot(self):
        return bokeh_pane(self.fig)

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest membrane window of ``batch``."""
        snap = next((s for s in reversed(batch) if s.membrane is not None), None)
        if snap is None or snap.membrane is self._membrane:  # nothing new to draw
            return
        m = self._membrane = snap.membrane
        if m.refused:  # no trace for this layer (a pool layer): say why, draw nothing
            self._clear()
            self._window = None
            self.info.object = m.refused
            return
        if self._plot not in self._layout.objects:
            self._layout.append(self._plot)
        t, u = decimate_minmax(np.asarray(m.t), np.asarray(m.u, dtype=np.float64), MAX_POINTS)
        window = [int(n) for n in np.asarray(m.neurons)]
        neurons = window[:MAX_SELECTED]  # the pool's size; the text input allows more
        spikes = _empty_trace()
        if 0 <= m.layer < len(snap.activity):
            act = snap.activity[m.layer]
            nrn, _, times = spike_events(act.times[neurons], act.counts[neurons])
            spikes = {
                "t": times,
                "u": np.full(times.size, float(m.theta)),
                "neuron": np.take(np.asarray(neurons, dtype=np.int64), nrn),
            }
        self.pool.set(
            (f"neuron {n}", {"t": t, "u": u[i], "neuron": np.full(t.size, n, dtype=np.int64)})
            for i, n in enumerate(neurons)
        )
        theta, reset = float(m.theta), float(m.reset)
        feed(self.theta_source, _level(theta))
        feed(self.reset_source, _level(theta - reset))
        feed(self.spike_source, spikes)
        self._window = (m.layer, window, theta, reset)
        self._note_selection()

    def reset(self):
        """Back to the empty state."""
        self._window = self._membrane = None
        self._clear()
        self.info.object = EMPTY_TEXT

    def _clear(self):
        if "fig" not in self.__dict__:  # nothing drawn yet
            return
        self.pool.set(())
        for src in (self.theta_source, self.reset_source):
            feed(src, _level(np.nan))
        feed(self.spike_source, _empty_trace())

    def _note_selection(self, *_):
        if self._window is None:
            return
        layer, neurons, theta, reset = self._window
        text = (
            f"Layer {layer}, neurons {neurons}: θ = {theta:.4g}, "
            f"Δθ = {reset:.4g}; u drops by Δθ at each spike (▲ at θ)."
        )
        if len(neurons) > MAX_SELECTED:
            text += f" The first {MAX_SELECTED} are drawn."
        want = (self.view_config.layer, sorted(self.view_config.neurons))
        if want != (layer, sorted(neurons)):
            text += f" Selected layer {want[0]}, neurons {want[1]}: shown from the next update."
        self.info.object = text

    def __panel__(self):
        return self._layout
