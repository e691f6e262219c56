"""Spike raster of the displayed sample, one layer at a time (app-architecture.md §7).

Small layers are drawn spike by spike with their exact times on hover (the teaching point: BATS
spike times are continuous). Large layers are binned on the server (``engine.analysis.bin_raster``)
into an image whose payload does not grow with the spike count. Clicking a neuron selects it for
the membrane-trace view (``view_config.neurons`` and ``view_config.layer``).

An image-like layer (shape (H, W, C): the input of an image task, conv and pool layers) also shows
one channel as an H × W image of the sample's spike counts or first-spike times per position
(``engine.analysis.channel_image``); clicking a pixel selects that neuron.

The view draws with Bokeh sources fed on each update (see ``widgets/live.py``).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import panel as pn
import param
from batscope.engine.analysis import (
    CHANNEL_QUANTITIES,
    bin_raster,
    channel_image,
    spike_events,
)
from bokeh.events import Tap
from bokeh.models import ColumnDataSource, LinearColorMapper
from bokeh.palettes import Greys256, Viridis256

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
    show,
    whole_number_ticks,
)

EXACT_LIMIT = 5_000  # spikes drawn one by one in "auto" mode
N_BINS = 200
MAX_SELECTED = 8
EMPTY_TEXT = "No spikes yet: start or step training."


def _empty_points() -> dict:
    return {"t": np.zeros(0), "neuron": np.zeros(0, np.int64), "slot": np.zeros(0, np.int64)}


class RasterView(PlotView):
    """Spike raster of one layer; exact glyphs when small, a binned image when large."""

    add_to_selection = param.Boolean(False, doc="A click adds the neuron instead of replacing")

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._activity = ()
        self._snapshot = None
        self.mode = "exact"  # what is drawn now: "exact" | "binned"

        self.exact_source = ColumnDataSource(_empty_points())
        # every figure is built when first drawn (exact_fig, binned_fig, channel_fig): a session
        # opens with none (the exact one alone was a third of the models of a page's document)
        self.binned_source = ColumnDataSource(empty_image())
        # white for an empty bin, black for the fullest (Bokeh's Greys run black to white)
        self.mapper = LinearColorMapper(palette=list(reversed(Greys256)), low=0.0, high=1.0)
        # one channel of an (H, W, C) layer as an image; NaN (silent, first spike) is transparent
        self.channel_source = ColumnDataSource(empty_image())
        self.channel_mapper = LinearColorMapper(
            palette=Viridis256, low=0.0, high=1.0, nan_color=(0, 0, 0, 0)
        )
        self.channel = pn.widgets.IntInput(label="channel", value=0, start=0, end=0, width=120)
        self.quantity = pn.widgets.RadioButtonGroup(
            options=list(CHANNEL_QUANTITIES), value=CHANNEL_QUANTITIES[0]
        )
        for widget in (self.channel, self.quantity):
            widget.param.watch(self._redraw, "value")

        self.layer_select = pn.widgets.RadioButtonGroup(options={"layer 1": 1}, value=1)
        self.layer_select.param.watch(self._on_layer_select, "value")
        self.info = LiveText(EMPTY_TEXT)
        self._plots = pn.Column(sizing_mode="stretch_width")
        self.view_config.param.watch(self._redraw, ["layer", "raster_mode", "sample_index"])
        # the layer choice shows once there are layers to choose from
        self._choices = pn.Row(
            self.layer_select,
            pn.widgets.Checkbox.from_param(self.param.add_to_selection, label="add on click"),
            visible=False,
        )
        self._layout = pn.Column(
            self._choices,
            self.info,
            self._plots,
            sizing_mode="stretch_width",
        )

    # -- the figures built when first needed ----------------------------------------------------
    def _built(self, name: str) -> bool:
        """Whether the lazily built part ``name`` (a cached property) exists yet."""
        return name in self.__dict__

    @cached_property
    def exact_fig(self):
        """The exact raster: one mark per spike at its exact time."""
        fig = self.figure("", "t (s)", "neuron", height=320)
        whole_number_ticks(fig.yaxis)
        spikes = fig.scatter(
            "t",
            "neuron",
            source=self.exact_source,
            marker="dash",
            angle=np.pi / 2,
            size=10,
            line_width=2,
            color="black",
        )
        add_hover(
            fig, [spikes], [("neuron", "@neuron"), ("slot", "@slot"), ("t (s)", "@t{0.000000}")]
        )
        fig.on_event(Tap, self._on_tap)
        return fig

    def _pane_of(self, fig, mode: str):
        """``fig`` in a pane, shown while ``mode`` is the one drawn."""
        pane = bokeh_pane(fig)
        show(pane, self.mode == mode)
        return pane

    @cached_property
    def _exact_pane(self):
        return self._pane_of(self.exact_fig, "exact")

    @cached_property
    def binned_fig(self):
        """The binned raster (a large layer's spikes as an image of counts per bin)."""
        fig = self.figure("", "t (s), binned", "neuron", height=320)
        whole_number_ticks(fig.yaxis)
        fig.visible = self.mode == "binned"
        image = add_image(fig, self.binned_source, self.mapper)
        add_hover(
            fig,
            [image],
            [("t (s)", "$x{0.000}"), ("neuron", "$y{0}"), ("spikes per bin", "@image")],
        )
        add_colorbar(fig, self.mapper, "spikes per bin")
        fig.on_event(Tap, self._on_tap)
        return fig

    @cached_property
    def _binned_pane(self):
        return self._pane_of(self.binned_fig, "binned")

    @cached_property
    def channel_fig(self):
        """One channel of an image-like layer as an H × W image."""
        fig = self.figure("", "col", "row", height=320)
        pixels = add_image(fig, self.channel_source, self.channel_mapper)
        fig.x_range.range_padding = fig.y_range.range_padding = 0
        fig.grid.visible = False
        add_hover(fig, [pixels], [("col", "$x{0}"), ("value", "@image")])
        add_colorbar(fig, self.channel_mapper, "count or time (s)")
        fig.on_event(Tap, self._on_channel_tap)
        return fig

    @cached_property
    def _channel_pane(self):
        return pn.Column(
            pn.Row(self.channel, self.quantity),
            bokeh_pane(self.channel_fig),
            sizing_mode="stretch_width",
            visible=False,
        )

    # -- updates ------------------------------------------------------------------------------
    def update(self, batch):
        """Draw the newest snapshot of ``batch`` that carries spikes."""
        snap = next((s for s in reversed(batch) if s.activity), None)
        if snap is None or snap.activity is self._activity:  # nothing new to draw
            return
        self._snapshot, self._activity = snap, snap.activity
        options = {a.name: i for i, a in enumerate(snap.activity)}
        if options != self.layer_select.options:
            self.layer_select.options = options
        self._choices.visible = True
        self._redraw()

    def reset(self):
        """Back to the empty state: no figure on show."""
        self._snapshot, self._activity = None, ()
        feed(self.exact_source, _empty_points())
        feed(self.binned_source, empty_image())
        feed(self.channel_source, empty_image())
        self.mode = "exact"
        for name in ("_exact_pane", "_binned_pane"):
            if self._built(name):
                show(getattr(self, name), False)
        self._show_channel(False)
        self._choices.visible = False
        self.info.object = EMPTY_TEXT

    @property
    def layer(self) -> int:
        """The displayed layer index, clamped to the layers present."""
        return int(np.clip(self.view_config.layer, 0, max(len(self._activity) - 1, 0)))

    def _place(self, pane) -> None:
        """Put ``pane`` on the page (in its place under the others) if it is not there yet."""
        if pane not in self._plots.objects:
            names = ("_exact_pane", "_binned_pane", "_channel_pane")
            order = [getattr(self, k) for k in names if self._built(k)]
            self._plots.objects = [p for p in order if p is pane or p in self._plots.objects]

    def _show(self, mode: str) -> None:
        """Show the figure of ``mode`` (built and placed when first shown), hide the other."""
        self.mode = mode
        for name, on in (("_exact_pane", mode == "exact"), ("_binned_pane", mode == "binned")):
            if on or self._built(name):
                show(getattr(self, name), on)
            if on:
                self._place(getattr(self, name))

    def _redraw(self, *_):
        if not self._activity:
            return
        layer = self.layer
        act = self._activity[layer]
        if self.layer_select.value != layer:
            self.layer_select.value = layer
        n_spikes = int(np.asarray(act.counts).sum())
        mode = self.view_config.raster_mode
        if mode == "auto":
            mode = "exact" if n_spikes <= EXACT_LIMIT else "binned"
        switched = mode != self.mode
        t_max = float(self._snapshot.t_max)
        # the hidden plot is emptied once, when the mode switches, not on every frame
        if mode == "exact":
            neuron, slot, t = spike_events(act.times, act.counts)
            if switched:
                feed(self.binned_source, empty_image())
            feed(self.exact_source, {"t": t, "neuron": neuron, "slot": slot})
        else:
            _, binned = bin_raster(act.times, act.counts, t_max, N_BINS)
            if switched:
                feed(self.exact_source, _empty_points())
            # row j spans neuron j ± 0.5; Bokeh puts row 0 at the bottom
            feed(self.binned_source, image_data(binned, 0.0, -0.5, t_max, binned.shape[0] - 0.5))
            high = float(max(binned.max(initial=0), 1))
            if self.mapper.high != high:
                self.mapper.high = high
        self._show(mode)
        self._draw_channel(act)
        snap = self._snapshot
        how = "exact times" if mode == "exact" else f"binned, Δt = {t_max / N_BINS * 1e3:.3g} ms"
        hint = "" if layer == 0 else " Click a neuron to trace its membrane."
        self.info.object = (
            f"**{act.name}**: {n_spikes} spikes from {len(act.counts)} neurons ({how}); "
            f"sample {snap.sample_index}, label {snap.label}, predicted {snap.prediction}.{hint}"
        )

    def _show_channel(self, on: bool) -> None:
        # Only the column is toggled: setting a rendered Bokeh pane's ``visible`` makes Panel
        # copy the figure's properties back onto the pane, and a served figure's stylesheets
        # (Bokeh models) fail the pane's validation.
        if on or self._built("_channel_pane"):
            self._channel_pane.visible = on
        if on:
            self._place(self._channel_pane)

    def _draw_channel(self, act) -> None:
        """The chosen channel of an (H, W, C) layer as an image; hidden for a flat layer."""
        image_like = len(act.shape) == 3
        self._show_channel(image_like)
        if not image_like:
            return
        h, w, c = act.shape
        self.channel.end = c - 1
        channel = min(self.channel.value, c - 1)
        z = channel_image(act.times, act.counts, act.shape, channel, self.quantity.value)
        # row 0 of the layer on top: Bokeh draws image row 0 at the bottom, so flip
        feed(self.channel_source, image_data(z[::-1], -0.5, -0.5, w - 0.5, h - 0.5))
        finite = z[np.isfinite(z)]
        high = float(finite.max()) if finite.size else 1.0
        low = 0.0 if self.quantity.value == "spike count" else float(finite.min(initial=0.0))
        self.channel_mapper.update(low=low, high=max(high, low + 1e-12))
        self.channel_fig.title.text = (
            f"{act.name}, channel {channel} of {c}: {self.quantity.value} per position "
            f"({h} × {w}, row 0 on top)"
        )

    def _on_channel_tap(self, event):
        """A click on the channel image selects the neuron at that position and channel."""
        if event.x is None or event.y is None or not self._activity or self.layer == 0:
            return
        h, w, c = self._activity[self.layer].shape
        col = int(np.clip(round(event.x), 0, w - 1))
        row = h - 1 - int(np.clip(round(event.y), 0, h - 1))
        neuron = (row * w + col) * c + min(self.channel.value, c - 1)
        self.view_config.param.update(layer=self.layer, neurons=[neuron])

    def _on_layer_select(self, event):
        if event.new is not None and event.new != self.view_config.layer:
            self.view_config.layer = int(event.new)

    def _on_tap(self, event):
        """A click on the raster selects the neuron under it (input neurons have no membrane)."""
        if event.y is None or not self._activity or self.layer == 0:
            return
        n_neurons = len(self._activity[self.layer].counts)
        neuron = int(np.clip(round(event.y), 0, n_neurons - 1))
        neurons = [neuron]
        if self.add_to_selection:
            old = [n for n in self.view_config.neurons if n != neuron]
            neurons = (old + [neuron])[-MAX_SELECTED:]
        self.view_config.param.update(layer=self.layer, neurons=neurons)

    def __panel__(self):
        return self._layout
