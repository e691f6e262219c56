"""The α·β error flow of one layer for the displayed sample (docs/backward.md §7).

For each spike k: φ_k, the inter-neuron error (from the loss or the next layer); μ_k = α_k·β_k, the
intra-neuron error through the neuron's own later spikes (the reset path, docs/backward.md §3); and
the total δ_k = φ_k + μ_k = dL/dt_k. The share Σ|μ| / (Σ|φ| + Σ|μ|) says how much the reset path
matters; it is 0 for single-spike neurons.

A pooling layer has no neurons: the view says so instead of drawing its routed errors.

The figures are plain Bokeh models built once; ``update`` only feeds their sources and colour
ranges (see ``widgets/live.py``).
"""

from __future__ import annotations

import numpy as np
import panel as pn
from batscope.engine.analysis import bin_raster, emitted, error_sums
from bokeh.models import ColumnDataSource

from .base import PlotView
from .live import (
    LiveText,
    add_colorbar,
    add_hover,
    add_image,
    bokeh_pane,
    empty_image,
    feed,
    image_data,
    set_limit,
    show,
    symmetric_mapper,
    whole_number_ticks,
)
from .raster import EXACT_LIMIT, N_BINS

EMPTY_TEXT = (
    "**No error flow yet.** It appears after the first backward pass (start or step training). "
    "For each spike k of a layer it shows φ_k, the error arriving from the loss or the next layer, "
    "μ_k = α_k·β_k, the error through the neuron's own later spikes (the reset path), and their "
    "sum δ_k = dL/dt_k."
)
COLORS = {"φ": "#1f77b4", "μ": "#ff7f0e", "δ": "#2ca02c"}
MARKERS = {"φ": "circle", "μ": "square", "δ": "diamond"}
POINT_COLUMNS = ("t", "neuron", "slot", "delta", "phi", "mu", "size")


def _limit(values) -> float:
    """Half-width of a symmetric colour range: max |finite value|, or 1 when there is none."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.abs(values[np.isfinite(values)])
    m = float(finite.max()) if finite.size else 0.0
    return m if m > 0 else 1.0


def _empty_points() -> dict:
    return {c: np.zeros(0) for c in POINT_COLUMNS}


def _empty_bars() -> dict:
    return {c: np.zeros(0) for c in ("left", "right", "bottom", "top", "neuron")}


def _empty_timeline() -> dict:
    return {c: np.zeros(0) for c in ("k", "value", "neuron")}


class ErrorFlowView(PlotView):
    """δ per spike (coloured, sized by |δ|), per-neuron Σφ/Σμ bars, and chosen neurons' φ, μ, δ."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._snapshot = None
        self.mode = "exact"

        # exact: one marker per spike, coloured by δ on a symmetric scale, sized by |δ|
        self.points_source = ColumnDataSource(_empty_points())
        self.points_mapper = symmetric_mapper()
        self.points_fig = self.figure(
            "δ_k per spike (colour: sign, size: |δ|)", "t (s)", "neuron", height=300
        )
        whole_number_ticks(self.points_fig.yaxis)
        points = self.points_fig.scatter(
            "t",
            "neuron",
            source=self.points_source,
            size="size",
            fill_color={"field": "delta", "transform": self.points_mapper},
            line_color="black",
            line_width=0.3,
        )
        add_colorbar(self.points_fig, self.points_mapper, "δ")
        add_hover(
            self.points_fig,
            [points],
            [
                ("neuron", "@neuron"),
                ("slot k", "@slot"),
                ("t (s)", "@t{0.000000}"),
                ("δ", "@delta"),
                ("φ", "@phi"),
                ("μ = αβ", "@mu"),
            ],
        )

        # binned: Σ δ per (neuron, time bin), row j at height j
        self.image_source = ColumnDataSource(empty_image())
        self.image_mapper = symmetric_mapper()
        self.image_fig = self.figure(
            "Σ δ per (neuron, time bin)", "t (s), binned", "neuron", height=300
        )
        whole_number_ticks(self.image_fig.yaxis)
        image = add_image(self.image_fig, self.image_source, self.image_mapper)
        add_colorbar(self.image_fig, self.image_mapper, "Σ δ")
        add_hover(
            self.image_fig,
            [image],
            [("t (s)", "$x{0.000000}"), ("neuron", "$y{0}"), ("Σ δ", "@image")],
        )

        # per neuron: signed Σφ and Σμ side by side
        self.bar_sources = {c: ColumnDataSource(_empty_bars()) for c in ("φ", "μ")}
        self.bars_fig = self.figure(
            "per neuron: Σφ (inter) and Σμ (reset path), signed", "neuron", "error sum", height=260
        )
        whole_number_ticks(self.bars_fig.xaxis)
        for c, source in self.bar_sources.items():
            bars = self.bars_fig.quad(
                left="left",
                right="right",
                bottom="bottom",
                top="top",
                source=source,
                color=COLORS[c],
                line_width=0,
                legend_label=f"Σ{c}",
            )
            add_hover(self.bars_fig, [bars], [("neuron", "@neuron"), (f"Σ{c}", "@top")])
        self.bars_fig.legend.location = "top_right"

        # chosen neurons: φ, μ, δ against the spike index k
        self.timeline_sources = {c: ColumnDataSource(_empty_timeline()) for c in MARKERS}
        self.timeline_fig = self.figure(
            "selected neurons: φ, μ, δ per spike index k", "spike index k", "error", height=260
        )
        for c, source in self.timeline_sources.items():
            marks = self.timeline_fig.scatter(
                "k",
                "value",
                source=source,
                marker=MARKERS[c],
                size=8,
                color=COLORS[c],
                legend_label=c,
            )
            add_hover(
                self.timeline_fig, [marks], [("neuron", "@neuron"), ("k", "@k"), (c, "@value")]
            )
        self.timeline_fig.legend.location = "top_right"

        self.info = LiveText(EMPTY_TEXT)
        self._points_pane = bokeh_pane(self.points_fig)
        self._image_pane = bokeh_pane(self.image_fig)
        show(self._image_pane, False)
        self.view_config.param.watch(self._redraw, ["layer", "neurons", "raster_mode"])
        self._layout = pn.Column(
            self.info,
            self._points_pane,
            self._image_pane,
            pn.Row(
                bokeh_pane(self.bars_fig),
                bokeh_pane(self.timeline_fig),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest snapshot of ``batch`` that carries errors (a backward pass ran)."""
        snap = next((s for s in reversed(batch) if s.errors and s.activity), None)
        if snap is None or snap is self._snapshot:  # nothing new to draw
            return
        self._snapshot = snap
        self._redraw()

    def reset(self):
        """Back to the explanatory empty state."""
        self._snapshot = None
        self._clear()
        self.info.object = EMPTY_TEXT

    def _clear(self):
        self.mode = "exact"
        feed(self.points_source, _empty_points())
        feed(self.image_source, empty_image())
        for source in self.bar_sources.values():
            feed(source, _empty_bars())
        for source in self.timeline_sources.values():
            feed(source, _empty_timeline())
        show(self._points_pane, True)
        show(self._image_pane, False)

    def _flow(self):
        """The ErrorFlow shown: ``view_config.layer`` if it has errors, else the last layer's."""
        flows = {f.layer: f for f in self._snapshot.errors}
        layer = self.view_config.layer if self.view_config.layer in flows else max(flows)
        return flows[layer]

    def _redraw(self, *_):
        if self._snapshot is None:
            return
        snap, flow = self._snapshot, self._flow()
        act = snap.activity[flow.layer]
        if act.kind == "pool2d":  # no neurons: nothing of α·β to show
            self._clear()
            self.info.object = (
                f"**{act.name}** is a pooling layer: it has no neurons, hence no α·β and no "
                f"reset path (μ = 0). The error of each of its spikes goes unchanged (φ = δ) to "
                f"the spike of layer {flow.layer - 1} it merged. Choose a conv or dense layer."
            )
            return
        times, counts = np.asarray(act.times), np.asarray(act.counts)
        delta = np.asarray(flow.delta, dtype=np.float64)
        phi = np.asarray(flow.phi, dtype=np.float64)
        mu = np.asarray(flow.mu, dtype=np.float64)
        mask = emitted(times, counts)
        n_spikes = int(mask.sum())
        mode = self.view_config.raster_mode
        if mode == "auto":
            mode = "exact" if n_spikes <= EXACT_LIMIT else "binned"
        switched, self.mode = mode != self.mode, mode
        # the hidden plot is emptied once, when the mode switches, not on every frame
        if mode == "exact":
            neuron, slot = np.nonzero(mask)
            d = delta[neuron, slot]
            limit = _limit(d)
            size = 4 + 14 * np.nan_to_num(np.abs(d) / limit, nan=0.0)
            cols = dict(t=times[neuron, slot], neuron=neuron, slot=slot, delta=d)
            cols.update(phi=phi[neuron, slot], mu=mu[neuron, slot], size=size)
            if switched:
                feed(self.image_source, empty_image())
            feed(self.points_source, cols)
            set_limit(self.points_mapper, limit)
        else:
            t_max = float(snap.t_max)
            _, binned = bin_raster(times, counts, t_max, N_BINS, weights=delta)
            if switched:
                feed(self.points_source, _empty_points())
            # Bokeh draws row 0 at the bottom: neuron j sits at height j
            feed(self.image_source, image_data(binned, 0.0, -0.5, t_max, binned.shape[0] - 0.5))
            set_limit(self.image_mapper, _limit(binned))
        show(self._points_pane, mode == "exact")
        show(self._image_pane, mode == "binned")
        sums = error_sums(phi, mu, counts)
        for c, data in self._bar_data(sums).items():
            feed(self.bar_sources[c], data)
        chosen = self._chosen(flow.layer, counts, np.abs(np.where(mask, delta, 0.0)))
        for c, data in self._timeline_data(chosen, counts, phi, mu, delta).items():
            feed(self.timeline_sources[c], data)
        text = self._summary(snap, flow.layer, act.name, sums, mask, delta, chosen)
        if chosen and not counts[chosen].any():
            text += " (silent: no spikes, so no errors)."
        self.info.object = text  # set once: each change re-renders the Markdown

    @staticmethod
    def _bar_data(sums):
        """Signed bars side by side: Σφ on [n − 0.4, n], Σμ on [n, n + 0.4]."""
        neuron = np.arange(sums.phi.size)
        n, zero = neuron.astype(np.float64), np.zeros(neuron.size)
        return {
            "φ": dict(left=n - 0.4, right=n, bottom=zero, top=sums.phi, neuron=neuron),
            "μ": dict(left=n, right=n + 0.4, bottom=zero, top=sums.mu, neuron=neuron),
        }

    def _chosen(self, layer, counts, abs_delta):
        """``view_config.neurons`` when they belong to this layer, else the neuron with most |δ|."""
        if self.view_config.layer == layer:
            chosen = [n for n in self.view_config.neurons if 0 <= n < counts.size]
            if chosen:
                return chosen
        return [int(np.argmax(np.nansum(abs_delta, axis=1)))] if counts.size else []

    @staticmethod
    def _timeline_data(chosen, counts, phi, mu, delta):
        none = [np.zeros(0, np.int64)]
        k = np.concatenate([np.arange(counts[n]) for n in chosen] or none)
        neuron = np.concatenate([np.full(counts[n], n) for n in chosen] or none)
        return {
            name: {
                "k": k,
                "value": np.concatenate([values[n, : counts[n]] for n in chosen] or [np.zeros(0)]),
                "neuron": neuron,
            }
            for name, values in (("φ", phi), ("μ", mu), ("δ", delta))
        }

    @staticmethod
    def _summary(snap, layer, name, sums, mask, delta, chosen):
        total = sums.abs_phi.sum() + sums.abs_mu.sum()
        share = f"{sums.abs_mu.sum() / total:.3f}" if total > 0 else "n/a (no error)"
        n_nan = int((~np.isfinite(delta) & mask).sum())
        nan_note = f" **{n_nan} non-finite δ** (grey)." if n_nan else ""
        where = name if name == f"layer {layer}" else f"{name} (layer {layer})"
        return (
            f"**{where}**, step {snap.step}: reset-path share "
            f"Σ|μ| / (Σ|φ| + Σ|μ|) = **{share}** over {int(mask.sum())} spikes "
            f"(0 for single-spike neurons). Timeline: neurons {chosen}.{nan_note}"
        )

    def __panel__(self):
        return self._layout
