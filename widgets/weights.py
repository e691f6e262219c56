"""Weights of one trainable layer: the matrix W[j, i] (post j, pre i) and a receptive field.

A fixed symmetric colour range (−m, m), with m the largest |w| seen in this layer so far, and a
diverging colormap keep colours from jumping between frames (app-architecture.md §8). For a
784-input layer the receptive field is reshaped to the 28 × 28 image.
"""

from __future__ import annotations

import math

import holoviews as hv
import numpy as np
import panel as pn

from .base import PlotView

if "bokeh" not in hv.Store.renderers:  # Bokeh-only view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

EMPTY_TEXT = "No weights yet: they are sent with the heavy snapshots during training."


def _field_shape(n_pre: int) -> tuple[int, int]:
    """28 × 28 for MNIST-like inputs, a square when n_pre is one, else a single row."""
    side = math.isqrt(n_pre)
    return (side, side) if side * side == n_pre else (1, n_pre)


class WeightsView(PlotView):
    """Heatmap of a layer's weight matrix and the receptive field of a selected neuron."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._weights, self._drawn = (), None
        self._limits: dict[int, float] = {}
        opts = dict(
            framewise=True,
            shared_axes=False,
            hooks=self.hooks,
            cmap="RdBu_r",
            colorbar=True,
            tools=["hover"],
            responsive=True,
            min_height=320,
        )
        self.matrix_pipe = hv.streams.Pipe(data=self._empty())
        self.field_pipe = hv.streams.Pipe(data=self._empty())
        self.matrix = hv.DynamicMap(self._matrix, streams=[self.matrix_pipe]).opts(
            title="W[j, i]", **opts
        )
        self.field = hv.DynamicMap(self._field, streams=[self.field_pipe]).opts(
            title="receptive field", **opts
        )
        self.layer_select = pn.widgets.RadioButtonGroup(options={"layer 1": 1}, value=1)
        self.layer_select.param.watch(self._on_layer_select, "value")
        self.neuron = pn.widgets.IntInput(label="neuron", value=0, start=0, end=0, width=120)
        self.neuron.param.watch(self._redraw, "value")
        self.info = pn.pane.Markdown(EMPTY_TEXT, margin=(0, 10))
        self.view_config.param.watch(self._follow_config, ["layer", "neurons"])
        self.view_config.param.watch(self._refresh, ["svg_export"])
        pane = dict(linked_axes=False, sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(self.layer_select, self.neuron),
            self.info,
            pn.Row(
                pn.pane.HoloViews(self.matrix, **pane),
                pn.pane.HoloViews(self.field, **pane),
                sizing_mode="stretch_width",
            ),
            sizing_mode="stretch_width",
        )

    # -- elements (always the same type, empty data included) --------------------------------
    @staticmethod
    def _empty():
        return {"z": np.zeros((0, 0), np.float32), "bounds": (0.0, 0.0, 1.0, 1.0), "m": 1.0}

    @staticmethod
    def _matrix(data):
        """Bounds, not coordinates (a single row has no spacing); array row 0 is drawn on top."""
        w = hv.Dimension("w", range=(-data["m"], data["m"]))
        return hv.Image(data["z"], ["pre i", "post j"], [w], bounds=data["bounds"])

    @staticmethod
    def _field(data):
        w = hv.Dimension("w", range=(-data["m"], data["m"]))
        return hv.Image(data["z"], ["x", "y"], [w], bounds=data["bounds"])

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest weights of ``batch``."""
        snap = next((s for s in reversed(batch) if s.weights), None)
        if snap is None or snap.weights is self._drawn:  # nothing new to draw
            return
        self._drawn = snap.weights
        self._weights = tuple(np.asarray(w).reshape(w.shape[0], -1) for w in snap.weights)
        for i, w in enumerate(self._weights, start=1):
            finite = np.abs(w[np.isfinite(w)])
            m = float(finite.max()) if finite.size else 0.0
            self._limits[i] = max(self._limits.get(i, 0.0), m) or 1.0
        options = {f"layer {i}": i for i in range(1, len(self._weights) + 1)}
        if options != self.layer_select.options:
            self.layer_select.options = options
        self._follow_config()
        self._redraw()

    def reset(self):
        """Back to the empty state; the colour ranges start again."""
        self._weights, self._limits, self._drawn = (), {}, None
        self.matrix_pipe.send(self._empty())
        self.field_pipe.send(self._empty())
        self.info.object = EMPTY_TEXT

    @property
    def layer(self) -> int:
        """The displayed trainable layer (1-based like ``view_config.layer``)."""
        return int(self.layer_select.value or 1)

    def _follow_config(self, *_):
        """Follow ``view_config``: its layer when trainable, its first neuron in that layer."""
        if not self._weights:
            return
        cfg = self.view_config
        if 1 <= cfg.layer <= len(self._weights):
            self.layer_select.value = cfg.layer
            n_post = self._weights[cfg.layer - 1].shape[0]
            if cfg.neurons and 0 <= cfg.neurons[0] < n_post:
                self.neuron.value = cfg.neurons[0]

    def _redraw(self, *_):
        if not self._weights:
            return
        w = self._weights[self.layer - 1]
        n_post, n_pre = w.shape
        m = self._limits[self.layer]
        self.neuron.end = n_post - 1
        j = min(self.neuron.value, n_post - 1)
        self.matrix_pipe.send(
            {
                "z": w[::-1].astype(np.float32),  # post neuron j at height j
                "bounds": (-0.5, -0.5, n_pre - 0.5, n_post - 0.5),
                "m": m,
            }
        )
        rows, cols = _field_shape(n_pre)
        self.field_pipe.send(
            {
                "z": w[j].reshape(rows, cols).astype(np.float32),  # image row 0 at the top
                "bounds": (0.0, 0.0, float(cols), float(rows)),
                "m": m,
            }
        )
        n_bad = int((~np.isfinite(w)).sum())
        bad = f" **{n_bad} non-finite weights.**" if n_bad else ""
        self.info.object = (
            f"Layer {self.layer}: {n_post} × {n_pre} weights, |w| ≤ {np.nanmax(np.abs(w)):.3g}, "
            f"colour range ±{m:.3g} (largest |w| so far). Receptive field of neuron {j} "
            f"({rows} × {cols}).{bad}"
        )

    def _on_layer_select(self, event):
        self._redraw()

    def _refresh(self, *_):
        """Re-send the data so the hooks (SVG export) run again."""
        for pipe in (self.matrix_pipe, self.field_pipe):
            pipe.send(pipe.data)

    def __panel__(self):
        return self._layout
