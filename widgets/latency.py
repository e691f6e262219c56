"""Classification latency (paper Figs. 6–7) with batscope's definition (method.md §13).

acc(T_d) predicts from the output spikes with t ≤ T_d only; "confidence" is acc(T_d)/acc(T_sim).
The dashed line marks the end of the encoding window T_enc: the paper's claim is that the
multi-spike net reaches 100 % confidence before it, while single-spike outputs fire only after it.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
from batscope.engine.analysis import confidence, first_time_at
from batscope.engine.telemetry import LatencyCurve

from .base import PlotView

if "bokeh" not in hv.Store.renderers:  # Bokeh-only view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

EMPTY_TEXT = "No latency curve yet: it is measured on an evaluation batch during training."


class LatencyView(PlotView):
    """Accuracy and confidence against decision time; several curves and stored references."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._curves: list[LatencyCurve] = []
        self._references: dict[str, LatencyCurve] = {}
        self.pipe = hv.streams.Pipe(data={"curves": [], "t_enc": np.nan})
        opts = dict(framewise=True, shared_axes=False, hooks=self.hooks)
        overlay = dict(responsive=True, min_height=280, legend_position="bottom_right", **opts)
        enc = dict(color="grey", line_dash="dashed", line_width=1.5, **opts)
        self.accuracy = (
            hv.DynamicMap(self._lines("accuracy"), streams=[self.pipe])
            * hv.DynamicMap(self._t_enc, streams=[self.pipe]).opts(**enc)
        ).opts(
            hv.opts.Curve(tools=["hover"], line_width=2, **opts),
            hv.opts.NdOverlay(**opts),
            hv.opts.Overlay(title="accuracy vs decision time", **overlay),
        )
        self.confidence = (
            hv.DynamicMap(self._lines("confidence"), streams=[self.pipe])
            * hv.DynamicMap(self._t_enc, streams=[self.pipe]).opts(**enc)
        ).opts(
            hv.opts.Curve(tools=["hover"], line_width=2, **opts),
            hv.opts.NdOverlay(**opts),
            hv.opts.Overlay(title="confidence = acc(T_d) / acc(T_sim)", **overlay),
        )
        self.info = pn.pane.Markdown(EMPTY_TEXT, margin=(0, 10))
        self.view_config.param.watch(self._refresh, ["svg_export"])
        pane = dict(linked_axes=False, sizing_mode="stretch_width")
        self._layout = pn.Column(
            self.info,
            pn.Row(
                pn.pane.HoloViews(self.accuracy, **pane),
                pn.pane.HoloViews(self.confidence, **pane),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    # -- elements (always the same type, empty data included) --------------------------------
    @staticmethod
    def _lines(measure):
        label = {"accuracy": "accuracy (%)", "confidence": "confidence (%)"}[measure]

        def lines(data):
            items = {}
            for curve in data["curves"]:
                y = curve.accuracy if measure == "accuracy" else confidence(curve)
                items[curve.label] = hv.Curve((curve.t, 100 * np.asarray(y)), "T_d", measure)
            items = items or {"none": hv.Curve([], "T_d", measure)}
            return hv.NdOverlay(items, kdims="curve").redim.label(
                T_d="decision time T_d (s)", **{measure: label}
            )

        return lines

    @staticmethod
    def _t_enc(data):
        t_enc = data["t_enc"]
        return hv.VLine(0.0 if np.isnan(t_enc) else t_enc, label="T_enc")

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest curves of ``batch``: ``latency`` plus ``extra["latency_curves"]``."""
        for snap in reversed(batch):
            curves = ([snap.latency] if snap.latency is not None else []) + list(
                snap.extra.get("latency_curves", ())
            )
            if curves:
                self._curves = curves
                self._send()
                return

    def set_reference(self, curve: LatencyCurve, label: str | None = None):
        """Overlay a stored curve (e.g. the single-spike run) on every later frame."""
        if not isinstance(curve, LatencyCurve):
            raise TypeError(f"curve must be a LatencyCurve, got {type(curve).__name__}")
        name = label or curve.label or "reference"
        self._references[name] = LatencyCurve(curve.t, curve.accuracy, curve.t_enc, name)
        self._send()

    def clear_references(self):
        """Remove every stored reference curve."""
        self._references.clear()
        self._send()

    def reset(self):
        """Back to the empty state (stored references are kept: they belong to other runs)."""
        self._curves = []
        self._send()

    def _send(self):
        curves, seen = [], set()
        for c in [*self._curves, *self._references.values()]:
            name = c.label or "current run"
            while name in seen:
                name += "′"
            seen.add(name)
            curves.append(LatencyCurve(c.t, c.accuracy, c.t_enc, name))
        t_enc = curves[0].t_enc if curves else np.nan
        self.pipe.send({"curves": curves, "t_enc": float(t_enc)})
        self.info.object = self._summary(curves) if curves else EMPTY_TEXT

    @staticmethod
    def _summary(curves):
        parts = []
        for c in curves:
            t100 = first_time_at(c.t, confidence(c), 1.0)
            when = "never" if np.isnan(t100) else f"at {1e3 * t100:.0f} ms"
            parts.append(
                f"**{c.label}**: final accuracy {100 * c.accuracy[-1]:.1f} %, "
                f"100 % confidence {when} (T_enc = {1e3 * c.t_enc:.0f} ms)"
            )
        return "; ".join(parts)

    def _refresh(self, *_):
        """Re-send the data so the hooks (SVG export) run again."""
        self.pipe.send(self.pipe.data)

    def __panel__(self):
        return self._layout
