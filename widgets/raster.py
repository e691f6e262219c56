"""Spike raster of the displayed sample, one layer at a time (app-architecture.md §7).

Small layers are drawn spike by spike with their exact times on hover (the teaching point: BATS
spike times are continuous). Large layers are binned on the server (``engine.analysis.bin_raster``)
into an ``hv.Image`` whose payload does not grow with the spike count. Clicking a neuron selects it
for the membrane-trace view (``view_config.neurons`` and ``view_config.layer``).
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param
from batscope.engine.analysis import bin_raster, spike_events

from .base import PlotView

if "bokeh" not in hv.Store.renderers:  # Bokeh-only view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

EXACT_LIMIT = 5_000  # spikes drawn one by one in "auto" mode
N_BINS = 200
MAX_SELECTED = 8
# labelled dimensions made once: ``.redim.label`` per frame clones the element (costly per tick)
T_EXACT = hv.Dimension("t", label="t (s)")
T_BINNED = hv.Dimension("t", label="t (s), binned")
SPIKES = hv.Dimension("spikes", label="spikes per bin")


def unchanged(old, new) -> bool:
    """Whether two Pipe payloads (nested dicts, sequences, arrays, numbers) are equal."""
    if isinstance(new, dict):
        return (
            isinstance(old, dict)
            and old.keys() == new.keys()
            and all(unchanged(old[k], new[k]) for k in new)
        )
    if isinstance(new, np.ndarray) or isinstance(old, np.ndarray):
        return (
            isinstance(old, np.ndarray)
            and isinstance(new, np.ndarray)
            and old.shape == new.shape
            and old.dtype == new.dtype
            and np.array_equal(old, new, equal_nan=old.dtype.kind in "fc")
        )
    if isinstance(new, list | tuple):
        return (
            isinstance(old, list | tuple) and len(old) == len(new) and all(map(unchanged, old, new))
        )
    try:
        return bool(old == new) or bool(old != old and new != new)
    except (TypeError, ValueError):
        return False


def send_changed(pipe, data) -> None:
    """``pipe.send(data)`` unless the plot already shows equal data (a redraw costs milliseconds
    of GIL time that the training thread waits for)."""
    if not unchanged(pipe.data, data):
        pipe.send(data)


class RasterView(PlotView):
    """Spike raster of one layer; exact glyphs when small, a binned image when large."""

    add_to_selection = param.Boolean(False, doc="A click adds the neuron instead of replacing")

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._activity = ()
        self._snapshot = None
        self.mode = "exact"  # what is drawn now: "exact" | "binned"
        self.exact_pipe = hv.streams.Pipe(data=self._empty_points())
        self.binned_pipe = hv.streams.Pipe(data=self._empty_image())
        common = dict(
            framewise=True,
            shared_axes=False,
            responsive=True,
            min_height=320,
            hooks=self.hooks,
        )
        self.exact_dmap = hv.DynamicMap(self._points, streams=[self.exact_pipe]).opts(
            hv.opts.Points(
                marker="dash",
                angle=90,
                size=10,
                line_width=2,
                color="black",
                tools=["hover", "tap"],
                hover_tooltips=[
                    ("neuron", "@neuron"),
                    ("slot", "@slot"),
                    ("t (s)", "@t{0.000000}"),
                ],
                **common,
            )
        )
        self.binned_dmap = hv.DynamicMap(self._image, streams=[self.binned_pipe]).opts(
            hv.opts.Image(cmap="Greys", colorbar=True, tools=["hover", "tap"], **common)
        )
        self.exact_tap = hv.streams.Tap(source=self.exact_dmap)
        self.binned_tap = hv.streams.Tap(source=self.binned_dmap)
        for tap in (self.exact_tap, self.binned_tap):
            tap.param.watch(self._on_tap, ["x", "y"])
        self.layer_select = pn.widgets.RadioButtonGroup(options={"layer 1": 1}, value=1)
        self.layer_select.param.watch(self._on_layer_select, "value")
        self.info = pn.pane.Markdown("No spikes yet: start or step training.", margin=(0, 10))
        self._exact_pane = pn.pane.HoloViews(
            self.exact_dmap, linked_axes=False, sizing_mode="stretch_width"
        )
        self._binned_pane = pn.pane.HoloViews(
            self.binned_dmap, linked_axes=False, sizing_mode="stretch_width", visible=False
        )
        self.view_config.param.watch(self._redraw, ["layer", "raster_mode", "sample_index"])
        self.view_config.param.watch(self._refresh, ["svg_export"])
        self._layout = pn.Column(
            pn.Row(
                self.layer_select,
                pn.widgets.Checkbox.from_param(self.param.add_to_selection, label="add on click"),
            ),
            self.info,
            self._exact_pane,
            self._binned_pane,
            sizing_mode="stretch_width",
        )

    # -- elements (always the same type, empty data included) --------------------------------
    @staticmethod
    def _empty_points():
        return {"t": np.zeros(0), "neuron": np.zeros(0, np.int64), "slot": np.zeros(0, np.int64)}

    @staticmethod
    def _empty_image():
        return {"z": np.zeros((0, 0), np.float32), "bounds": (0.0, 0.0, 1.0, 1.0)}

    @staticmethod
    def _points(data):
        return hv.Points(data, kdims=[T_EXACT, "neuron"], vdims=["slot"])

    @staticmethod
    def _image(data):
        """Bounds, not coordinates: a one-neuron layer has no coordinate spacing; row 0 on top."""
        return hv.Image(
            data["z"], kdims=[T_BINNED, "neuron"], vdims=[SPIKES], bounds=data["bounds"]
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
        self._redraw()

    def reset(self):
        """Back to the empty state."""
        self._snapshot, self._activity, self.mode = None, (), "exact"
        self.exact_pipe.send(self._empty_points())
        self.binned_pipe.send(self._empty_image())
        self.info.object = "No spikes yet: start or step training."

    @property
    def layer(self) -> int:
        """The displayed layer index, clamped to the layers present."""
        return int(np.clip(self.view_config.layer, 0, max(len(self._activity) - 1, 0)))

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
        switched, self.mode = mode != self.mode, mode
        t_max = float(self._snapshot.t_max)
        # the hidden plot is emptied once, when the mode switches, not on every frame
        if mode == "exact":
            neuron, slot, t = spike_events(act.times, act.counts)
            if switched:
                send_changed(self.binned_pipe, self._empty_image())
            send_changed(self.exact_pipe, {"t": t, "neuron": neuron, "slot": slot})
        else:
            _, binned = bin_raster(act.times, act.counts, t_max, N_BINS)
            if switched:
                send_changed(self.exact_pipe, self._empty_points())
            bounds = (0.0, -0.5, t_max, binned.shape[0] - 0.5)
            send_changed(self.binned_pipe, {"z": binned[::-1].astype(np.float32), "bounds": bounds})
        self._exact_pane.visible = mode == "exact"
        self._binned_pane.visible = mode == "binned"
        snap = self._snapshot
        how = "exact times" if mode == "exact" else f"binned, Δt = {t_max / N_BINS * 1e3:.3g} ms"
        hint = "" if layer == 0 else " Click a neuron to trace its membrane."
        self.info.object = (
            f"**{act.name}**: {n_spikes} spikes from {len(act.counts)} neurons ({how}); "
            f"sample {snap.sample_index}, label {snap.label}, predicted {snap.prediction}.{hint}"
        )

    def _refresh(self, *_):
        """Re-send the data so the hooks (SVG export) run again."""
        for pipe in (self.exact_pipe, self.binned_pipe):
            pipe.send(pipe.data)

    def _on_layer_select(self, event):
        if event.new is not None and event.new != self.view_config.layer:
            self.view_config.layer = int(event.new)

    def _on_tap(self, *_):
        """A click on the raster selects the neuron under it (input neurons have no membrane)."""
        tap = self.exact_tap if self.mode == "exact" else self.binned_tap
        if tap.y is None or not self._activity or self.layer == 0:
            return
        n_neurons = len(self._activity[self.layer].counts)
        neuron = int(np.clip(round(tap.y), 0, n_neurons - 1))
        neurons = [neuron]
        if self.add_to_selection:
            old = [n for n in self.view_config.neurons if n != neuron]
            neurons = (old + [neuron])[-MAX_SELECTED:]
        self.view_config.param.update(layer=self.layer, neurons=neurons)

    def __panel__(self):
        return self._layout
