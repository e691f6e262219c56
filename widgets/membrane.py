"""Membrane potential u(t) of the selected neurons, with θ, the reset level and the spikes.

The engine evaluates u(t) in closed form from the stored spikes (method.md §2, §3.4), so the trace
is exact: it reaches θ at each spike time and drops by Δθ there (u ← u − Δθ, method.md §1). Long
traces are shortened by min/max decimation, which keeps the crossings and the reset drops.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
from batscope.engine.analysis import decimate_minmax, spike_events

from .base import PlotView
from .errorflow import StyledOverlay
from .raster import send_changed

if "bokeh" not in hv.Store.renderers:  # Bokeh-only view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

MAX_POINTS = 2_000  # per trace, after decimation
# labelled dimensions made once: ``.redim.label`` per frame clones the element (costly per tick)
T_DIM = hv.Dimension("t", label="t (s)")
U_DIM = hv.Dimension("u", label="u(t)")
EMPTY_TEXT = "No membrane trace yet: start or step training, then click a neuron in the raster."


class MembraneView(PlotView):
    """u(t) per selected neuron (one colour each), θ and θ − Δθ lines, spikes marked at θ."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self.pipe = hv.streams.Pipe(data=self._empty())
        opts = dict(framewise=True, shared_axes=False, hooks=self.hooks)
        line = dict(line_width=1.5, **opts)
        layers = [
            (
                self._curves,
                [
                    hv.opts.Curve(tools=["hover"], **line),
                    hv.opts.NdOverlay(legend_position="right", **opts),
                ],
            ),
            (self._theta, dict(color="firebrick", line_dash="dashed", **line)),
            (self._reset_level, dict(color="grey", line_dash="dotted", line_width=1, **opts)),
            (
                self._spikes,
                dict(
                    marker="triangle",
                    size=9,
                    color="firebrick",
                    tools=["hover"],
                    hover_tooltips=[("neuron", "@neuron"), ("t (s)", "@t{0.000000}")],
                    **opts,
                ),
            ),
        ]
        # one DynamicMap, options set once (see StyledOverlay): curves, θ, θ − Δθ, spikes
        self.dmap = hv.DynamicMap(
            StyledOverlay(layers, {"data": self._empty()}, responsive=True, min_height=320, **opts),
            streams=[self.pipe],
        )
        self.info = pn.pane.Markdown(EMPTY_TEXT, margin=(0, 10))
        self.view_config.param.watch(self._note_selection, ["layer", "neurons"])
        self.view_config.param.watch(self._refresh, ["svg_export"])
        self._window = self._membrane = None
        self._layout = pn.Column(
            self.info,
            pn.pane.HoloViews(self.dmap, linked_axes=False, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    @staticmethod
    def _empty():
        return {
            "traces": {},
            "theta": np.nan,
            "reset": np.nan,
            "spikes": {"t": np.zeros(0), "u": np.zeros(0), "neuron": np.zeros(0, np.int64)},
        }

    # -- elements (always the same type, empty data included) --------------------------------
    @staticmethod
    def _curves(data):
        """One curve per neuron; key −1 is an empty placeholder (an empty overlay cannot plot)."""
        items = {int(n): hv.Curve(tu, T_DIM, U_DIM) for n, tu in data["traces"].items()}
        items = items or {-1: hv.Curve((np.zeros(0), np.zeros(0)), T_DIM, U_DIM)}
        return hv.NdOverlay(items, kdims="neuron")

    @staticmethod
    def _theta(data):
        return hv.HLine(0.0 if np.isnan(data["theta"]) else data["theta"], label="θ")

    @staticmethod
    def _reset_level(data):
        level = data["theta"] - data["reset"]
        return hv.HLine(0.0 if np.isnan(level) else level, label="θ − Δθ")

    @staticmethod
    def _spikes(data):
        return hv.Points(data["spikes"], kdims=[T_DIM, U_DIM], vdims=["neuron"], label="spikes")

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest membrane window of ``batch``."""
        snap = next((s for s in reversed(batch) if s.membrane is not None), None)
        if snap is None or snap.membrane is self._membrane:  # nothing new to draw
            return
        m = self._membrane = snap.membrane
        t, u = decimate_minmax(np.asarray(m.t), np.asarray(m.u, dtype=np.float64), MAX_POINTS)
        neurons = [int(n) for n in np.asarray(m.neurons)]
        spikes = self._empty()["spikes"]
        if 0 <= m.layer < len(snap.activity):
            act = snap.activity[m.layer]
            nrn, _, times = spike_events(act.times[neurons], act.counts[neurons])
            spikes = {
                "t": times,
                "u": np.full(times.size, m.theta),
                "neuron": np.take(neurons, nrn),
            }
        self._window = (m.layer, neurons)
        send_changed(
            self.pipe,
            {
                "traces": {n: (t, u[i]) for i, n in enumerate(neurons)},
                "theta": float(m.theta),
                "reset": float(m.reset),
                "spikes": spikes,
            },
        )
        self._note_selection()

    def reset(self):
        """Back to the empty state."""
        self._window = self._membrane = None
        self.pipe.send(self._empty())
        self.info.object = EMPTY_TEXT

    def _note_selection(self, *_):
        if self._window is None:
            return
        layer, neurons = self._window
        data = self.pipe.data
        text = (
            f"Layer {layer}, neurons {neurons}: θ = {data['theta']:.4g}, "
            f"Δθ = {data['reset']:.4g}; u drops by Δθ at each spike (▲ at θ)."
        )
        want = (self.view_config.layer, sorted(self.view_config.neurons))
        if want != (layer, sorted(neurons)):
            text += f" Selected layer {want[0]}, neurons {want[1]}: shown from the next update."
        self.info.object = text

    def _refresh(self, *_):
        """Re-send the data so the hooks (SVG export) run again."""
        self.pipe.send(self.pipe.data)

    def __panel__(self):
        return self._layout
