"""Weights of one trainable layer: the matrix W[j, i] (post j, pre i) and a receptive field.

A fixed symmetric colour range (−m, m), with m the largest |w| seen in this layer so far, and a
diverging colormap keep colours from jumping between frames (app-architecture.md §8). For a
784-input layer the receptive field is reshaped to the 28 × 28 image. A conv layer's weights
``[C_out, k, k, C_in]`` are drawn as their matrix ``[C_out, k·k·C_in]`` and as C_out small k × k
kernel images for a chosen input channel (``engine.analysis.kernel_tiles``). Layers are named by
their place in the network (a pool layer has no weights and no entry). Drawn with Bokeh image
sources (widgets/live.py), sent only when new weights arrive or the layer or neuron changes.
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import panel as pn
from batscope.engine.analysis import kernel_tiles
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
)

EMPTY_TEXT = "No weights yet: they are sent with the heavy snapshots during training."


def _field_shape(n_pre: int) -> tuple[int, int]:
    """28 × 28 for MNIST-like inputs, a square when n_pre is one, else a single row."""
    side = math.isqrt(n_pre)
    return (side, side) if side * side == n_pre else (1, n_pre)


def _empty_field() -> dict:
    return {**empty_image(), "i": []}


class WeightsView(PlotView):
    """Heatmap of a layer's weight matrix and the receptive field of a selected neuron."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._weights, self._drawn = {}, None
        self._limits: dict[int, float] = {}
        self.matrix_source = ColumnDataSource(empty_image())
        self.field_source = ColumnDataSource(_empty_field())
        self.matrix_mapper, self.field_mapper = symmetric_mapper(), symmetric_mapper()
        self.matrix = self._image_figure(
            "W[j, i]", "pre i", "post j", self.matrix_source, self.matrix_mapper
        )
        add_hover(
            self.matrix,
            self.matrix.renderers,
            [("pre i", "$x{0}"), ("post j", "$y{0}"), ("w", "@image{0.0000}")],
        )
        self.field = self._image_figure(
            "receptive field", "x", "y", self.field_source, self.field_mapper
        )
        add_hover(self.field, self.field.renderers, [("pre i", "@i"), ("w", "@image{0.0000}")])
        # a conv layer's kernels: the figure is built when a conv layer is first drawn
        self.kernel_source = ColumnDataSource(empty_image())
        self.kernel_mapper = symmetric_mapper()
        self.in_channel = pn.widgets.IntInput(
            label="input channel", value=0, start=0, end=0, width=120
        )
        self.in_channel.param.watch(self._redraw, "value")
        self.layer_select = pn.widgets.RadioButtonGroup(options={"layer 1": 1}, value=1)
        self.layer_select.param.watch(self._on_layer_select, "value")
        self.neuron = pn.widgets.IntInput(label="neuron", value=0, start=0, end=0, width=120)
        self.neuron.param.watch(self._redraw, "value")
        self.info = LiveText(EMPTY_TEXT)
        self.view_config.param.watch(self._follow_config, ["layer", "neurons"])
        self._field_pane = bokeh_pane(self.field)
        self.in_channel.visible = False
        self._plots = pn.Row(bokeh_pane(self.matrix), self._field_pane, sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.Row(self.layer_select, self.neuron, self.in_channel),
            self.info,
            self._plots,
            sizing_mode="stretch_width",
        )

    @cached_property
    def kernels(self):
        """The kernels of a conv layer for one input channel, side by side."""
        fig = self._image_figure(
            "kernels (output channel o from x = o·(k + 1))",
            "x",
            "kernel row (0 on top)",
            self.kernel_source,
            self.kernel_mapper,
        )
        add_hover(fig, fig.renderers, [("w", "@image{0.0000}")])
        return fig

    @cached_property
    def _kernel_pane(self):
        pane = bokeh_pane(self.kernels)
        self._plots.append(pane)
        return pane

    def _image_figure(self, title, x_label, y_label, source, mapper):
        fig = self.figure(title, x_label, y_label, height=320)
        add_image(fig, source, mapper)
        fig.x_range.range_padding = fig.y_range.range_padding = 0
        fig.grid.visible = False
        add_colorbar(fig, mapper, "w")
        return fig

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest weights of ``batch``."""
        snap = next((s for s in reversed(batch) if s.weights), None)
        if snap is None or snap.weights is self._drawn:  # nothing new to draw
            return
        self._drawn = snap.weights
        # network layer of each weight array: the layers that have weights, in order
        trainable = [i for i, a in enumerate(snap.activity) if i > 0 and a.kind != "pool2d"]
        if len(trainable) != len(snap.weights):  # no layer kinds in the snapshot: all trainable
            trainable = list(range(1, len(snap.weights) + 1))
        self._weights = {i: np.asarray(w) for i, w in zip(trainable, snap.weights, strict=True)}
        for i, w in self._weights.items():
            finite = np.abs(w[np.isfinite(w)])
            m = float(finite.max()) if finite.size else 0.0
            self._limits[i] = max(self._limits.get(i, 0.0), m) or 1.0
        options = {f"layer {i}": i for i in self._weights}
        if options != self.layer_select.options:
            self.layer_select.options = options
        self._follow_config()
        self._redraw()

    def reset(self):
        """Back to the empty state; the colour ranges start again."""
        self._weights, self._limits, self._drawn = {}, {}, None
        feed(self.matrix_source, empty_image())
        feed(self.field_source, _empty_field())
        feed(self.kernel_source, empty_image())
        for mapper in (self.matrix_mapper, self.field_mapper, self.kernel_mapper):
            set_limit(mapper, 1.0)
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
        if cfg.layer in self._weights:
            self.layer_select.value = cfg.layer
            w = self._weights[cfg.layer]
            if not cfg.neurons or cfg.neurons[0] < 0:
                return
            if w.ndim == 4:  # a conv neuron's row is its channel (channels-last index)
                self.neuron.value = cfg.neurons[0] % w.shape[0]
            elif cfg.neurons[0] < w.shape[0]:
                self.neuron.value = cfg.neurons[0]

    def _redraw(self, *_):
        if not self._weights:
            return
        layer = self.layer if self.layer in self._weights else next(iter(self._weights))
        w_full = self._weights[layer]
        w = w_full.reshape(w_full.shape[0], -1)
        n_post, n_pre = w.shape
        m = self._limits[layer]
        self.neuron.end = n_post - 1
        j = min(self.neuron.value, n_post - 1)
        # Bokeh draws image row 0 at the bottom: post neuron j at height j
        feed(self.matrix_source, image_data(w, -0.5, -0.5, n_pre - 0.5, n_post - 0.5))
        conv = w_full.ndim == 4
        self.neuron.name = "output channel" if conv else "neuron"
        show(self._field_pane, not conv)
        if conv or "_kernel_pane" in vars(self):  # built for the first conv layer drawn
            show(self._kernel_pane, conv)
        self.in_channel.visible = conv
        if conv:
            shown = self._draw_kernels(w_full)
        else:
            rows, cols = _field_shape(n_pre)
            field = image_data(w[j].reshape(rows, cols)[::-1], 0.0, 0.0, cols, rows)  # row 0 on top
            feed(
                self.field_source,
                {**field, "i": [np.arange(n_pre, dtype=np.int32).reshape(rows, cols)[::-1]]},
            )
            shown = f"Receptive field of neuron {j} ({rows} × {cols})."
        for mapper in (self.matrix_mapper, self.field_mapper, self.kernel_mapper):
            set_limit(mapper, m)
        n_bad = int((~np.isfinite(w)).sum())
        bad = f" **{n_bad} non-finite weights.**" if n_bad else ""
        self.info.object = (
            f"Layer {layer}: {n_post} × {n_pre} weights, |w| ≤ {np.nanmax(np.abs(w)):.3g}, "
            f"colour range ±{m:.3g} (largest |w| so far). {shown}{bad}"
        )

    def _draw_kernels(self, w) -> str:
        """The C_out k × k kernels of the chosen input channel side by side; returns the text."""
        c_out, k, _, c_in = w.shape
        self.in_channel.end = c_in - 1
        ch = min(self.in_channel.value, c_in - 1)
        tiles = kernel_tiles(w, ch)
        # kernel row 0 on top (Bokeh draws image row 0 at the bottom); one unit per weight
        feed(self.kernel_source, image_data(tiles[::-1], 0.0, 0.0, tiles.shape[1], k))
        return (
            f"Kernels of the {c_out} output channels ({k} × {k}, input channel {ch} of "
            f"{c_in}; shape (C_out, k, k, C_in) = {w.shape}); the matrix rows are kernels "
            "flattened (row, col, input channel)."
        )

    def _on_layer_select(self, event):
        self._redraw()

    def __panel__(self):
        return self._layout
