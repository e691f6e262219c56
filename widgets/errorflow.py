"""The α·β error flow of one layer for the displayed sample (method.md §6.6).

For each spike k: φ_k, the inter-neuron error (from the loss or the next layer); μ_k = α_k·β_k, the
intra-neuron error through the neuron's own later spikes (the reset path, method.md §6.2); and the
total δ_k = φ_k + μ_k = dL/dt_k. The share Σ|μ| / (Σ|φ| + Σ|μ|) says how much the reset path
matters; it is 0 for single-spike neurons.
"""

from __future__ import annotations

from functools import partial

import holoviews as hv
import numpy as np
import panel as pn
from batscope.engine.analysis import bin_raster, emitted, error_sums

from .base import PlotView
from .raster import EXACT_LIMIT, N_BINS, send_changed

if "bokeh" not in hv.Store.renderers:  # Bokeh-only view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

EMPTY_TEXT = (
    "**No error flow yet.** It appears after the first backward pass (start or step training). "
    "For each spike k of a layer it shows φ_k, the error arriving from the loss or the next layer, "
    "μ_k = α_k·β_k, the error through the neuron's own later spikes (the reset path), and their "
    "sum δ_k = dL/dt_k."
)
COLORS = {"φ": "#1f77b4", "μ": "#ff7f0e", "δ": "#2ca02c"}
# labelled dimensions made once: ``.redim.label`` per frame clones the element (costly per tick)
T_EXACT = hv.Dimension("t", label="t (s)")
T_BINNED = hv.Dimension("t", label="t (s), binned")
BAR_DIMS = [hv.Dimension("x0", label="neuron"), hv.Dimension("y0", label="error sum"), "x1", "y1"]
K_DIM = hv.Dimension("k", label="spike index k")
VALUE_DIM = hv.Dimension("value", label="error")


def _set_id(obj, opts_id):
    obj.id = opts_id


class StyledOverlay:
    """Callback of one DynamicMap drawing an overlay of layers ``[(make, style)]``: ``make(data)``
    builds a layer's element, ``style`` is an ``.opts`` keyword dict or a list of option specs.

    ``dmap.opts(...)`` re-applies its options to every frame, and ``dmap1 * dmap2`` evaluates
    the layers' DynamicMaps again for each subplot. Here the options are set once, on prototype
    elements, and every frame's elements take over their option ids: per tick, each layer is
    built once and no options are applied.
    """

    def __init__(self, layers, empty, **overlay_opts):
        self._makers = [make for make, _ in layers]
        protos = [make(**empty) for make, _ in layers]  # ``empty``: the streams' contents
        self._protos = [
            p.opts(*style) if isinstance(style, list) else p.opts(**style)
            for p, (_, style) in zip(protos, layers, strict=True)
        ]
        self._overlay = hv.Overlay(self._protos).opts(hv.opts.Overlay(**overlay_opts))

    def __call__(self, **contents):
        items = []
        for make, proto in zip(self._makers, self._protos, strict=True):
            element = make(**contents)
            element.traverse(partial(_set_id, opts_id=proto.id))  # NdOverlay children too
            items.append(element)
        overlay = hv.Overlay(items)
        overlay.id = self._overlay.id
        return overlay


def _limit(values) -> float:
    """Half-width of a symmetric colour range: max |finite value|, or 1 when there is none."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.abs(values[np.isfinite(values)])
    m = float(finite.max()) if finite.size else 0.0
    return m if m > 0 else 1.0


class ErrorFlowView(PlotView):
    """δ per spike (coloured, sized by |δ|), per-neuron Σφ/Σμ bars, and chosen neurons' φ, μ, δ."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._snapshot = None
        self.mode = "exact"
        opts = dict(framewise=True, shared_axes=False, hooks=self.hooks)
        self.points_pipe = hv.streams.Pipe(data=self._empty_points())
        self.image_pipe = hv.streams.Pipe(data=self._empty_image())
        self.bars_pipe = hv.streams.Pipe(data=self._empty_bars())
        self.timeline_pipe = hv.streams.Pipe(data=self._empty_timeline())
        self.points = hv.DynamicMap(self._points, streams=[self.points_pipe]).opts(
            cmap="RdBu_r",
            color="delta",
            size="size",
            colorbar=True,
            line_color="black",
            line_width=0.3,
            tools=["hover"],
            hover_tooltips=[
                ("neuron", "@neuron"),
                ("slot k", "@slot"),
                ("t (s)", "@t{0.000000}"),
                ("δ", "@delta"),
                ("φ", "@phi"),
                ("μ = αβ", "@mu"),
            ],
            responsive=True,
            min_height=300,
            title="δ_k per spike (colour: sign, size: |δ|)",
            **opts,
        )
        self.image = hv.DynamicMap(self._image, streams=[self.image_pipe]).opts(
            cmap="RdBu_r",
            colorbar=True,
            tools=["hover"],
            responsive=True,
            min_height=300,
            title="Σ δ per (neuron, time bin)",
            **opts,
        )
        bar_opts = dict(line_width=0, tools=["hover"], **opts)
        self.bars = hv.DynamicMap(
            StyledOverlay(
                [(self._bars(c), dict(color=COLORS[c], **bar_opts)) for c in ("φ", "μ")],
                {"data": self._empty_bars()},
                responsive=True,
                min_height=260,
                legend_position="top_right",
                title="per neuron: Σφ (inter) and Σμ (reset path), signed",
                **opts,
            ),
            streams=[self.bars_pipe],
        )
        marks = {"φ": "circle", "μ": "square", "δ": "diamond"}
        styles = {
            c: dict(
                color=COLORS[c],
                size=8,
                marker=marks[c],
                tools=["hover"],
                hover_tooltips=[("neuron", "@neuron"), ("k", "@k"), (c, "@value")],
                **opts,
            )
            for c in marks
        }
        self.timeline = hv.DynamicMap(
            StyledOverlay(
                [(self._timeline(c), styles[c]) for c in marks],
                {"data": self._empty_timeline()},
                responsive=True,
                min_height=260,
                legend_position="top_right",
                title="selected neurons: φ, μ, δ per spike index k",
                **opts,
            ),
            streams=[self.timeline_pipe],
        )
        self.info = pn.pane.Markdown(EMPTY_TEXT, margin=(0, 10))
        self._points_pane = pn.pane.HoloViews(
            self.points, linked_axes=False, sizing_mode="stretch_width"
        )
        self._image_pane = pn.pane.HoloViews(
            self.image, linked_axes=False, sizing_mode="stretch_width", visible=False
        )
        self.view_config.param.watch(self._redraw, ["layer", "neurons", "raster_mode"])
        self.view_config.param.watch(self._refresh, ["svg_export"])
        self._layout = pn.Column(
            self.info,
            self._points_pane,
            self._image_pane,
            pn.Row(
                pn.pane.HoloViews(self.bars, linked_axes=False, sizing_mode="stretch_width"),
                pn.pane.HoloViews(self.timeline, linked_axes=False, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    # -- elements (always the same type, empty data included) --------------------------------
    @staticmethod
    def _empty_points():
        cols = ("t", "neuron", "slot", "delta", "phi", "mu", "size")
        return {"data": {c: np.zeros(0) for c in cols}, "limit": 1.0}

    @staticmethod
    def _empty_image():
        return {"z": np.zeros((0, 0), np.float32), "bounds": (0.0, 0.0, 1.0, 1.0), "limit": 1.0}

    @staticmethod
    def _empty_bars():
        return {"φ": np.zeros((0, 5)), "μ": np.zeros((0, 5))}

    @staticmethod
    def _empty_timeline():
        return {c: {"k": np.zeros(0), "value": np.zeros(0), "neuron": np.zeros(0)} for c in "φμδ"}

    @staticmethod
    def _points(data):
        vd = hv.Dimension("delta", label="δ", range=(-data["limit"], data["limit"]))
        return hv.Points(
            data["data"], kdims=[T_EXACT, "neuron"], vdims=[vd, "phi", "mu", "slot", "size"]
        )

    @staticmethod
    def _image(data):
        vd = hv.Dimension("delta", label="Σ δ", range=(-data["limit"], data["limit"]))
        return hv.Image(data["z"], kdims=[T_BINNED, "neuron"], vdims=[vd], bounds=data["bounds"])

    @staticmethod
    def _bars(component):
        def bars(data):
            return hv.Rectangles(data[component], BAR_DIMS, ["sum"], label=f"Σ{component}")

        return bars

    @staticmethod
    def _timeline(component):
        def timeline(data):
            return hv.Scatter(data[component], [K_DIM], [VALUE_DIM, "neuron"], label=component)

        return timeline

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
        self._snapshot, self.mode = None, "exact"
        self.points_pipe.send(self._empty_points())
        self.image_pipe.send(self._empty_image())
        self.bars_pipe.send(self._empty_bars())
        self.timeline_pipe.send(self._empty_timeline())
        self._points_pane.visible, self._image_pane.visible = True, False
        self.info.object = EMPTY_TEXT

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
                send_changed(self.image_pipe, self._empty_image())
            send_changed(self.points_pipe, {"data": cols, "limit": limit})
        else:
            _, binned = bin_raster(times, counts, float(snap.t_max), N_BINS, weights=delta)
            if switched:
                send_changed(self.points_pipe, self._empty_points())
            send_changed(
                self.image_pipe,
                {
                    "z": binned[::-1].astype(np.float32),  # row 0 on top: highest neuron first
                    "bounds": (0.0, -0.5, float(snap.t_max), binned.shape[0] - 0.5),
                    "limit": _limit(binned),
                },
            )
        self._points_pane.visible = mode == "exact"
        self._image_pane.visible = mode == "binned"
        sums = error_sums(phi, mu, counts)
        send_changed(self.bars_pipe, self._bar_rects(sums))
        chosen = self._chosen(flow.layer, counts, np.abs(np.where(mask, delta, 0.0)))
        send_changed(self.timeline_pipe, self._timeline_data(chosen, counts, phi, mu, delta))
        self.info.object = self._summary(snap, flow.layer, act.name, sums, mask, delta, chosen)
        if chosen and not counts[chosen].any():
            self.info.object += " (silent: no spikes, so no errors)."

    @staticmethod
    def _bar_rects(sums):
        """Signed bars side by side: Σφ on [n − 0.4, n], Σμ on [n, n + 0.4]."""
        n = np.arange(sums.phi.size, dtype=np.float64)
        zero = np.zeros_like(n)
        return {
            "φ": np.column_stack([n - 0.4, zero, n, sums.phi, sums.phi]),
            "μ": np.column_stack([n, zero, n + 0.4, sums.mu, sums.mu]),
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
        data = {}
        for name, values in (("φ", phi), ("μ", mu), ("δ", delta)):
            k = [np.arange(counts[n]) for n in chosen]
            data[name] = {
                "k": np.concatenate(k).astype(np.float64) if k else np.zeros(0),
                "value": np.concatenate([values[n, : counts[n]] for n in chosen] or [[]]),
                "neuron": np.concatenate([np.full(counts[n], n) for n in chosen] or [[]]),
            }
        return data

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

    def _refresh(self, *_):
        """Re-send the data so the hooks (SVG export) run again."""
        for pipe in (self.points_pipe, self.image_pipe, self.bars_pipe, self.timeline_pipe):
            pipe.send(pipe.data)

    def __panel__(self):
        return self._layout
