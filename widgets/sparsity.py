"""Sparsity of the network (paper Figs. 4–5) with batscope's definitions (docs/training.md §5).

Per layer: spikes per sample; the fractions of active (n ≥ 1), dead (silent on every sample of the
evaluation batch) and saturated (n = n_max; none for the input layer) neurons; a histogram of
spikes per neuron; and the history of those fractions over training (the dead-neuron collapse of
paper Fig. 5), drawn from the run's light sparsity rows, so it is complete whichever tab was shown
(or read from a run folder's record). Drawn with
Bokeh sources (widgets/live.py): the layers are the factors of a categorical axis, the history is
a line with markers per layer (a ``LinePool``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, FactorRange, Legend, Range1d
from bokeh.transform import dodge

from .base import PlotView
from .live import LinePool, LiveText, add_hover, bokeh_pane, feed

EMPTY_TEXT = "No sparsity yet: it is measured on an evaluation batch during training."
MEASURES = {
    "dead": "dead neurons (%)",
    "active": "active neurons (%)",
    "saturated": "saturated at n_max (%)",
    "spikes": "spikes per sample",
}
NO_LAYERS = ["no layers yet"]
MAX_LAYERS = 10  # history lines drawn (the input layer and up to nine more)
HISTORY_COLUMNS = ["epoch", "step", "layer", "dead", "active", "saturated", "spikes"]
FRACTIONS = {"active": "#55a868", "dead": "#c44e52", "saturated": "#8172b2"}
BAR_COLOR = "#4c72b0"


def _empty_bars() -> dict:
    return {"layer": [], **{c: np.zeros(0) for c in ("spikes", "active", "dead", "saturated")}}


def _empty_hist() -> dict:
    return {"left": np.zeros(0), "right": np.zeros(0), "top": np.zeros(0)}


def _percent(s) -> tuple[float, float, float]:
    return 100 * s.dead_fraction, 100 * s.active_fraction, 100 * s.saturated_fraction


class SparsityView(PlotView):
    """Bars per layer, a spikes-per-neuron histogram and the history over training."""

    history_measure = param.Selector(default="dead", objects=list(MEASURES))

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._sparsity = ()
        self._activity_names: list[str] = []
        self.history = pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
        # the x axis of both bar plots; a placeholder factor while there are no layers (an
        # empty categorical axis has no range)
        self.layers = FactorRange(factors=NO_LAYERS)
        self.bars_source = ColumnDataSource(_empty_bars())
        self.hist_source = ColumnDataSource(_empty_hist())
        self.spikes = self._spikes_figure()
        self.fractions = self._fractions_figure()
        self.histogram = self.figure(
            "spikes per neuron", "mean spikes per sample of a neuron", "neurons", height=240
        )
        bins = self.histogram.quad(
            left="left", right="right", top="top", bottom=0, source=self.hist_source
        )
        bins.glyph.update(fill_color=BAR_COLOR, line_color="white")
        add_hover(
            self.histogram, [bins], [("spikes", "@left{0.00} – @right{0.00}"), ("neurons", "@top")]
        )
        self.timeline, self._timeline_hover = self._timeline_figure()
        self.layer_select = pn.widgets.Select(label="histogram layer", options=[], width=180)
        self.layer_select.param.watch(self._send_histogram, "value")
        self.info = LiveText(EMPTY_TEXT)
        self.view_config.param.watch(self._follow_layer, ["layer"])
        self.param.watch(self._send_history, ["history_measure"])
        self._layout = pn.Column(
            self.info,
            pn.Row(
                bokeh_pane(self.spikes), bokeh_pane(self.fractions), sizing_mode="stretch_width"
            ),
            pn.Row(
                pn.Column(self.layer_select, bokeh_pane(self.histogram)),
                pn.Column(
                    pn.widgets.Select.from_param(
                        self.param.history_measure, label="history of", width=180
                    ),
                    bokeh_pane(self.timeline),
                ),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    # -- figures (built once) -----------------------------------------------------------------
    def _spikes_figure(self):
        fig = self.figure(
            "spikes per sample",
            "layer",
            "spikes per sample (mean)",
            240,
            x_range=self.layers,
            y_range=Range1d(0, 1),  # set from the bars (a categorical plot has no anchor)
        )
        bars = fig.vbar(
            x="layer", top="spikes", width=0.8, source=self.bars_source, color=BAR_COLOR
        )
        add_hover(fig, [bars], [("layer", "@layer"), ("spikes per sample", "@spikes{0.00}")])
        fig.xgrid.visible = False
        return fig

    def _fractions_figure(self):
        fig = self.figure(
            "active / dead / saturated neurons",
            "layer",
            "% of neurons",
            240,
            x_range=self.layers,
            y_range=Range1d(0, 100),
        )
        fig.add_layout(Legend(), "right")
        bars = [
            fig.vbar(
                x=dodge("layer", 0.27 * (k - 1), range=self.layers),
                top=measure,
                width=0.25,
                source=self.bars_source,
                color=color,
                legend_label=measure,
                name=measure,
            )
            for k, (measure, color) in enumerate(FRACTIONS.items())
        ]
        add_hover(fig, bars, [("layer", "@layer"), ("measure", "$name"), ("%", "@$name{0.0}")])
        fig.xgrid.visible = False
        return fig

    def _timeline_figure(self):
        fig = self.figure("over training", "epoch", MEASURES[self.history_measure], 240)
        # a line per layer, made when a network with that many layers is first shown
        self.pool = LinePool(fig, MAX_LAYERS, "epoch", "value", ("layer",), made=0, marker="circle")
        legend = Legend(items=self.pool.items)
        fig.add_layout(legend, "right")
        hover = add_hover(fig, self.pool.renderers, self._timeline_tooltips())
        self.pool.legends.append(legend)
        self.pool.hovers.append(hover)
        return fig, hover

    def _timeline_tooltips(self):
        return [
            ("layer", "@layer"),
            ("epoch", "@epoch{0.00}"),
            (MEASURES[self.history_measure], "@value{0.00}"),
        ]

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest sparsity and append every new sparsity row of ``batch`` (light, kept
        while the view is hidden: training/telemetry.py) to the history."""
        rows, seen = [], set(zip(self.history["step"], self.history["layer"], strict=True))
        for r in (r for snap in batch for r in snap.sparsity_rows):
            if (r.step, r.layer) in seen:
                continue
            seen.add((r.step, r.layer))
            rows.append(
                (
                    r.epoch,
                    r.step,
                    r.layer,
                    100 * r.dead,
                    100 * r.active,
                    100 * r.saturated,
                    r.spikes,
                )
            )
        if rows:
            new = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
            self.history = new if self.history.empty else pd.concat([self.history, new])
            self._send_history()
        snap = next((s for s in reversed(batch) if s.sparsity), None)
        if snap is None or snap.sparsity is self._sparsity:  # drawn already
            return
        self._sparsity = snap.sparsity
        names = [s.name for s in snap.sparsity]
        if names != list(self.layers.factors):
            self.layers.factors = names or NO_LAYERS
        dead, active, saturated = np.array([_percent(s) for s in snap.sparsity], float).T
        spikes = np.array([s.spikes_per_sample for s in snap.sparsity], float)
        top = float(np.nanmax(spikes, initial=0.0)) * 1.1 or 1.0  # y range: 0 to the highest bar
        if self.spikes.y_range.end != top:
            self.spikes.y_range.end = top
        feed(
            self.bars_source,
            {
                "layer": names,
                "spikes": spikes,
                "active": active,
                "dead": dead,
                "saturated": saturated,
            },
        )
        self._activity_names = [a.name for a in snap.activity]
        if names != self.layer_select.options:
            self.layer_select.options = names
        self._follow_layer()
        self._send_histogram()
        self.info.object = f"Step {snap.step}, epoch {snap.epoch}: " + "; ".join(
            f"**{s.name}** {s.spikes_per_sample:.1f} spikes/sample, "
            f"{100 * s.active_fraction:.1f} % active, {100 * s.dead_fraction:.1f} % dead"
            for s in snap.sparsity
        )

    def reset(self):
        """Clear the history and go back to the empty state."""
        self._sparsity = ()
        self.history = pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
        self._send_history()
        feed(self.bars_source, _empty_bars())
        self.spikes.y_range.end = 1.0
        feed(self.hist_source, _empty_hist())
        if list(self.layers.factors) != NO_LAYERS:
            self.layers.factors = NO_LAYERS
        self.histogram.title.text = "spikes per neuron"
        self.info.object = EMPTY_TEXT

    def _follow_layer(self, *_):
        """The histogram follows ``view_config.layer`` (matched by the activity's layer name)."""
        names, layer = self.layer_select.options, self.view_config.layer
        if not names:
            return
        if layer < len(self._activity_names) and self._activity_names[layer] in names:
            self.layer_select.value = self._activity_names[layer]
        else:
            self.layer_select.value = names[min(layer, len(names) - 1)]

    def _send_histogram(self, *_):
        s = next((s for s in self._sparsity if s.name == self.layer_select.value), None)
        if s is None:
            return
        values = np.asarray(s.spikes_per_neuron, dtype=np.float64)
        values = values[np.isfinite(values)]
        top = max(float(values.max()) if values.size else 1.0, 1.0)
        counts, edges = np.histogram(values, bins=min(30, max(values.size, 1)), range=(0, top))
        feed(
            self.hist_source,
            {"left": edges[:-1], "right": edges[1:], "top": counts.astype(np.float64)},
        )
        title = f"spikes per neuron ({s.name})"
        if self.histogram.title.text != title:
            self.histogram.title.text = title

    def _send_history(self, *_):
        """One line and its markers per layer, coloured by order of appearance."""
        h, measure = self.history, self.history_measure
        self.pool.set(
            (
                name,
                {
                    "epoch": g["epoch"].to_numpy(float),
                    "value": g[measure].to_numpy(float),
                    "layer": g["layer"].to_numpy(str),
                },
            )
            for name, g in h.groupby("layer", sort=False)
        )
        label = MEASURES[measure]
        if self.timeline.yaxis[0].axis_label != label:
            self.timeline.yaxis[0].axis_label = label
            self._timeline_hover.tooltips = self._timeline_tooltips()

    def __panel__(self):
        return self._layout
