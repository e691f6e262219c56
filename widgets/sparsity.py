"""Sparsity of the network (paper Figs. 4–5) with batscope's definitions (method.md §13).

Per layer: spikes per sample; the fractions of active (n ≥ 1), dead (silent on every sample of the
evaluation batch) and saturated (n = n_max) neurons; a histogram of spikes per neuron; and the
history of those fractions over training (the dead-neuron collapse of paper Fig. 5).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from .base import PlotView

if "bokeh" not in hv.Store.renderers:  # Bokeh-only view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

EMPTY_TEXT = "No sparsity yet: it is measured on an evaluation batch during training."
MEASURES = {
    "dead": "dead neurons (%)",
    "active": "active neurons (%)",
    "saturated": "saturated at n_max (%)",
    "spikes": "spikes per sample",
}
HISTORY_COLUMNS = ["epoch", "step", "layer", "dead", "active", "saturated", "spikes"]


class SparsityView(PlotView):
    """Bars per layer, a spikes-per-neuron histogram and the history over training."""

    history_measure = param.Selector(default="dead", objects=list(MEASURES))

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._sparsity = ()
        self._activity_names: list[str] = []
        self.history = pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
        opts = dict(framewise=True, shared_axes=False, hooks=self.hooks, responsive=True)
        self.bars_pipe = hv.streams.Pipe(data=self._empty_bars())
        self.hist_pipe = hv.streams.Pipe(data=self._empty_hist())
        self.history_pipe = hv.streams.Pipe(data=self.history)
        self.spikes = hv.DynamicMap(self._spikes, streams=[self.bars_pipe]).opts(
            tools=["hover"], min_height=240, title="spikes per sample", **opts
        )
        self.fractions = hv.DynamicMap(self._fractions, streams=[self.bars_pipe]).opts(
            tools=["hover"],
            min_height=240,
            title="active / dead / saturated neurons",
            xrotation=0,
            **opts,
        )
        self.histogram = hv.DynamicMap(self._histogram, streams=[self.hist_pipe]).opts(
            tools=["hover"], min_height=240, color="#4c72b0", **opts
        )
        streams = [self.history_pipe, self.param.history_measure]
        self.timeline = (
            hv.DynamicMap(self._history(hv.Curve), streams=streams)
            * hv.DynamicMap(self._history(hv.Scatter), streams=streams)
        ).opts(
            hv.opts.Curve(line_width=2, **opts),
            hv.opts.Scatter(size=6, tools=["hover"], **opts),
            hv.opts.NdOverlay(legend_position="right", **opts),
            hv.opts.Overlay(min_height=240, title="over training", **opts),
        )
        self.layer_select = pn.widgets.Select(label="histogram layer", options=[], width=180)
        self.layer_select.param.watch(self._send_histogram, "value")
        self.info = pn.pane.Markdown(EMPTY_TEXT, margin=(0, 10))
        self.view_config.param.watch(self._follow_layer, ["layer"])
        self.view_config.param.watch(self._refresh, ["svg_export"])
        pane = dict(linked_axes=False, sizing_mode="stretch_width")
        self._layout = pn.Column(
            self.info,
            pn.Row(
                pn.pane.HoloViews(self.spikes, **pane),
                pn.pane.HoloViews(self.fractions, **pane),
                sizing_mode="stretch_width",
            ),
            pn.Row(
                pn.Column(self.layer_select, pn.pane.HoloViews(self.histogram, **pane)),
                pn.Column(
                    pn.widgets.Select.from_param(
                        self.param.history_measure, label="history of", width=180
                    ),
                    pn.pane.HoloViews(self.timeline, **pane),
                ),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    # -- elements (always the same type, empty data included) --------------------------------
    @staticmethod
    def _empty_bars():
        cols = {c: np.zeros(0) for c in ("spikes", "active", "dead", "saturated")}
        return pd.DataFrame({"layer": np.array([], dtype=object), **cols})

    @staticmethod
    def _empty_hist():
        return {"edges": np.array([0.0, 1.0]), "counts": np.zeros(1), "layer": ""}

    @staticmethod
    def _spikes(data):
        """An empty categorical Bars cannot later switch to factors: a placeholder bar "—"."""
        data = data if len(data) else pd.DataFrame({"layer": ["—"], "spikes": [0.0]})
        return hv.Bars(data, kdims=["layer"], vdims=["spikes"]).redim.label(
            spikes="spikes per sample (mean)"
        )

    @staticmethod
    def _fractions(data):
        long = data.melt(
            id_vars="layer", value_vars=["active", "dead", "saturated"], var_name="measure"
        )
        return hv.Bars(long, kdims=["layer", "measure"], vdims=["value"]).redim.label(
            value="% of neurons"
        )

    @staticmethod
    def _histogram(data):
        return (
            hv.Histogram((data["edges"], data["counts"]), kdims="spikes", vdims="neurons")
            .relabel(f"spikes per neuron {data['layer']}".strip())
            .redim.label(spikes="mean spikes per sample of a neuron")
        )

    @staticmethod
    def _history(element):
        """One ``element`` (lines, or markers so that a single point shows) per layer."""

        def history(data, history_measure):
            items = {
                str(name): element(group, "epoch", history_measure)
                for name, group in data.groupby("layer", sort=False)
            }
            items = items or {"none": element([], "epoch", history_measure)}
            return hv.NdOverlay(items, kdims="layer").redim.label(
                **{history_measure: MEASURES[history_measure]}
            )

        return history

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest sparsity and append every new measurement of ``batch`` to the history."""
        rows = []
        for snap in batch:
            if not snap.sparsity or snap.step in set(self.history["step"]):
                continue
            epoch = snap.epoch + snap.batch / max(snap.n_batches, 1)
            rows += [
                (epoch, snap.step, s.name, *self._percent(s), s.spikes_per_sample)
                for s in snap.sparsity
            ]
        snap = next((s for s in reversed(batch) if s.sparsity), None)
        if snap is None:
            return
        if rows:
            new = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
            self.history = new if self.history.empty else pd.concat([self.history, new])
            self.history_pipe.send(self.history)
        self._sparsity = snap.sparsity
        self.bars_pipe.send(
            pd.DataFrame(
                {
                    "layer": [s.name for s in snap.sparsity],
                    "spikes": [s.spikes_per_sample for s in snap.sparsity],
                    **dict(
                        zip(
                            ["dead", "active", "saturated"],
                            np.array([self._percent(s) for s in snap.sparsity]).T,
                            strict=True,
                        )
                    ),
                }
            )
        )
        self._activity_names = [a.name for a in snap.activity]
        names = [s.name for s in snap.sparsity]
        if names != self.layer_select.options:
            self.layer_select.options = names
        self._follow_layer()
        self._send_histogram()
        self.info.object = f"Step {snap.step}, epoch {snap.epoch}: " + "; ".join(
            f"**{s.name}** {s.spikes_per_sample:.1f} spikes/sample, "
            f"{100 * s.active_fraction:.1f} % active, {100 * s.dead_fraction:.1f} % dead"
            for s in snap.sparsity
        )

    @staticmethod
    def _percent(s):
        return 100 * s.dead_fraction, 100 * s.active_fraction, 100 * s.saturated_fraction

    def reset(self):
        """Clear the history and go back to the empty state."""
        self._sparsity = ()
        self.history = pd.DataFrame({c: [] for c in HISTORY_COLUMNS})
        self.history_pipe.send(self.history)
        self.bars_pipe.send(self._empty_bars())
        self.hist_pipe.send(self._empty_hist())
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
        self.hist_pipe.send({"edges": edges, "counts": counts, "layer": f"({s.name})"})

    def _refresh(self, *_):
        """Re-send the data so the hooks (SVG export) run again."""
        for pipe in (self.bars_pipe, self.hist_pipe, self.history_pipe):
            pipe.send(pipe.data)

    def __panel__(self):
        return self._layout
