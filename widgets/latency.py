"""Classification latency (paper Figs. 6–7) with batscope's definition (docs/training.md §5).

acc(T_d) predicts from the output spikes with t ≤ T_d only; "confidence" is acc(T_d)/acc(T_sim).
The dashed line marks the end of the encoding window T_enc: the paper's claim is that the
multi-spike net reaches 100 % confidence before it, while single-spike outputs fire only after it.
Drawn with Bokeh sources (widgets/live.py): a labelled line per curve, the current run's and the
stored references (a ``LinePool`` of ``MAX_CURVES``).
"""

from __future__ import annotations

import numpy as np
import panel as pn
from batscope.engine.analysis import LatencyCurve, confidence, first_time_at
from bokeh.models import Legend, Span

from .base import PlotView
from .live import LinePool, LiveText, add_hover, bokeh_pane

EMPTY_TEXT = "No latency curve yet: it is measured on an evaluation batch during training."
T_LABEL = "decision time T_d (s)"
MAX_CURVES = 6  # the current run's and stored references


class LatencyView(PlotView):
    """Accuracy and confidence against decision time; several curves and stored references."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._curves: list[LatencyCurve] = []
        self._references: dict[str, LatencyCurve] = {}
        self.accuracy, self.accuracy_t_enc, self.accuracy_lines = self._plot(
            "accuracy vs decision time", "accuracy (%)"
        )
        self.confidence, self.confidence_t_enc, self.confidence_lines = self._plot(
            "confidence = acc(T_d) / acc(T_sim)", "confidence (%)"
        )
        self.info = LiveText(EMPTY_TEXT)
        self._layout = pn.Column(
            self.info,
            pn.Row(
                bokeh_pane(self.accuracy), bokeh_pane(self.confidence), sizing_mode="stretch_width"
            ),
            sizing_mode="stretch_width",
        )

    def _plot(self, title: str, y_label: str):
        fig = self.figure(title, T_LABEL, y_label, height=280)
        pool = LinePool(fig, MAX_CURVES, "t", "value", ("curve",), made=0)  # made when drawn
        legend = Legend(items=pool.items, location="bottom_right")
        fig.add_layout(legend)
        hover = add_hover(
            fig,
            pool.renderers,
            [("curve", "@curve"), ("T_d (s)", "@t{0.000}"), (y_label, "@value{0.0}")],
        )
        pool.legends.append(legend)
        pool.hovers.append(hover)
        span = Span(
            dimension="height",
            line_color="grey",
            line_dash="dashed",
            line_width=1.5,
            visible=False,
        )
        fig.add_layout(span)
        return fig, span, pool

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest curves of ``batch``: ``latency`` plus ``extra["latency_curves"]``."""
        for snap in reversed(batch):
            curves = ([snap.latency] if snap.latency is not None else []) + list(
                snap.extra.get("latency_curves", ())
            )
            if curves:
                if len(curves) != len(self._curves) or any(
                    a is not b for a, b in zip(curves, self._curves, strict=True)
                ):
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
        for pool, values in (
            (self.accuracy_lines, lambda c: c.accuracy),
            (self.confidence_lines, confidence),
        ):
            pool.set(
                (
                    c.label,
                    {
                        "t": np.asarray(c.t, float),
                        "value": 100 * np.asarray(values(c), float),
                        "curve": np.full(len(c.t), c.label),
                    },
                )
                for c in curves
            )
        t_enc = float(curves[0].t_enc) if curves else np.nan
        for span in (self.accuracy_t_enc, self.confidence_t_enc):
            if np.isfinite(t_enc):
                span.update(location=t_enc, visible=True)
            else:
                span.visible = False
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

    def __panel__(self):
        return self._layout
