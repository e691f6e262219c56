"""Toy pattern editor: drag, add or delete input spikes and watch the network respond at once.

The input spikes of a small pattern are draggable points (Bokeh's ``PointDrawTool`` on a source of
columns t, neuron): drag a point to move a spike, click on empty space to add one, select and
press Backspace/Delete to remove one. After every edit the network runs forward on the edited
pattern (exact event-based simulation, docs/forward.md §5) and the output spikes, the output
membrane traces u(t) (docs/model.md §3, docs/forward.md §4) and the predictions are redrawn.
"""

from __future__ import annotations

import numpy as np
import panel as pn
import param
from batscope.engine.losses import predict_count, predict_first_spike
from batscope.engine.network import Network
from batscope.engine.spikes import SpikeTrains
from batscope.widgets.base import PlotView
from batscope.widgets.live import add_hover, bokeh_pane, feed, whole_number_ticks
from batscope.widgets.provider import SessionInputs, default_network, default_training
from bokeh.models import ColumnDataSource, FixedTicker, PointDrawTool, Range1d, Span

COLORS = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
MAX_INPUTS = 64  # larger networks (e.g. 784 inputs) are not editable by hand: use the default
MAX_SPIKES = 400
TRACE_POINTS = 600


class PatternEditorView(PlotView):
    """Edit a toy input pattern by hand; the network's response updates on every edit.

    ``network_provider() -> Network | None`` gives the session's network (None, or one with
    more than ``MAX_INPUTS`` inputs, means the default 4 → 2 convergence network);
    ``training_provider() -> dict | None`` gives the task (its patterns are the starting
    points) and ``t_max``; ``t_max`` overrides the simulation end.
    """

    pattern = param.Integer(0, bounds=(0, None), doc="Task pattern to start from")
    load = param.Event(label="Load task pattern")
    clear = param.Event(label="Clear all spikes")
    refresh = param.Event(label="Use the current weights")
    edited = param.Event(doc="Triggered after a spike was dragged, added or deleted in the page")

    def __init__(
        self, view_config=None, network_provider=None, training_provider=None, t_max=None, **params
    ):
        super().__init__(view_config=view_config, **params)
        self.inputs = SessionInputs(network_provider, training_provider)
        self._t_max_override = t_max
        self.network: Network = self._fetch_network()
        self.t_max = self._t_max()
        self.result: list[SpikeTrains] = []
        self.predictions: dict[str, int] = {}
        n_in = self.network.n_inputs
        self._editing = False  # set_pattern is drawing the points: not an edit of the user's
        self.points_fig = self._points_figure(n_in)
        self.raster_fig = self._raster_figure()
        self.traces_fig = self._traces_figure()
        self.info = pn.pane.Markdown("", css_classes=["editor-prediction"])
        controls = pn.Row(
            pn.widgets.IntInput.from_param(self.param.pattern, label="pattern", width=100),
            pn.widgets.Button.from_param(self.param.load, color="primary"),
            pn.widgets.Button.from_param(self.param.clear, color="light"),
            pn.widgets.Button.from_param(self.param.refresh, color="light"),
        )
        self._layout = pn.Column(
            pn.pane.Markdown("### Pattern editor"),
            controls,
            pn.Row(
                pn.Column(
                    bokeh_pane(self.points_fig),
                    bokeh_pane(self.raster_fig),
                    bokeh_pane(self.traces_fig),
                ),
                self.info,
            ),
        )
        self._on_load()

    def __panel__(self):
        return self._layout

    # ---- the figures ------------------------------------------------------------------------
    def _points_figure(self, n_inputs: int):
        """The input spikes as points to drag, add (a click) and delete (select + Delete)."""
        fig = self.figure(
            "Input spikes: drag to move, click to add, select + Delete to remove",
            "t [s]",
            "input neuron",
            240,
            x_range=Range1d(-0.02 * self.t_max, self.t_max),
            y_range=Range1d(-0.6, n_inputs - 0.4),
        )
        fig.yaxis.ticker = FixedTicker(ticks=list(range(n_inputs)))
        self.points_source = ColumnDataSource({"t": np.zeros(0), "neuron": np.zeros(0)})
        points = fig.scatter(
            "t", "neuron", source=self.points_source, size=11, color=COLORS[0], line_color="black"
        )
        self.draw = PointDrawTool(renderers=[points], num_objects=MAX_SPIKES, add=True, drag=True)
        fig.add_tools(self.draw)
        fig.toolbar.active_drag = self.draw
        fig.toolbar.active_tap = self.draw
        add_hover(fig, [points], [("t [s]", "@t{0.000}"), ("input", "@neuron{0}")])
        self.points_source.on_change("data", self._on_edit)
        return fig

    def _raster_figure(self):
        """The network's spikes, neurons of all layers stacked, coloured by layer."""
        fig = self.figure(
            "Network spikes (rows: neurons, layer by layer)",
            "t [s]",
            "neuron (all layers)",
            220,
            x_range=Range1d(-0.02 * self.t_max, self.t_max),
            y_range=Range1d(-0.6, 0.6),
        )
        whole_number_ticks(fig.yaxis)
        self.raster_source = ColumnDataSource(self._raster_data([]))
        marks = fig.scatter(
            "t",
            "row",
            source=self.raster_source,
            color="color",
            marker="dash",
            angle=np.pi / 2,
            size=9,
            line_width=3,
        )
        add_hover(fig, [marks], [("t [s]", "@t{0.000}"), ("row", "@row{0}"), ("layer", "@layer")])
        return fig

    def _traces_figure(self):
        """u(t) of each output neuron, and the threshold θ dashed."""
        fig = self.figure(
            "Output membrane potentials u(t) (dashed: threshold θ)",
            "t [s]",
            "u",
            260,
            x_range=Range1d(0.0, self.t_max),
            y_range=Range1d(-0.1, 1.1),
        )
        self.trace_source = ColumnDataSource({"xs": [], "ys": [], "color": [], "neuron": []})
        lines = fig.multi_line("xs", "ys", source=self.trace_source, color="color", line_width=2)
        self.theta = Span(dimension="width", location=1.0, line_color="grey", line_dash="dashed")
        fig.add_layout(self.theta)
        add_hover(fig, [lines], [("output neuron", "@neuron")])
        return fig

    def _on_edit(self, attr, old, new) -> None:
        """A drag, an added or a deleted spike in the browser."""
        if not self._editing:
            self.set_pattern(new["t"], new["neuron"], redraw_points=False)
            self.param.trigger("edited")

    # ---- inputs -----------------------------------------------------------------------------
    def _fetch_network(self) -> Network:
        net = self.inputs.network()
        self._default = net.n_inputs > MAX_INPUTS
        return default_network() if self._default else net

    def _training(self) -> dict:
        return default_training() if self._default else self.inputs.training()

    def _t_max(self) -> float:
        if self._t_max_override is not None:
            return float(self._t_max_override)
        return float(self._training()["t_max"])

    @param.depends("load", watch=True)
    def _on_load(self) -> None:
        """Start from pattern ``pattern`` of the task (any pattern if the task does not fit)."""
        try:
            x, _ = self.inputs.samples(self.pattern, 1, self._training())
        except (ValueError, FileNotFoundError):
            x = None
        if x is None or x.n_neurons != self.network.n_inputs:
            x = SpikeTrains.empty(1, self.network.n_inputs)
        t = np.asarray(x.times[0])
        n, k = np.nonzero(np.isfinite(t))
        self.set_pattern(t[n, k], n)

    @param.depends("clear", watch=True)
    def _on_clear(self) -> None:
        self.set_pattern([], [])

    @param.depends("refresh", watch=True)
    def _on_refresh(self) -> None:
        self.network = self._fetch_network()
        self.recompute()

    def set_pattern(self, t, neuron, redraw_points: bool = True) -> None:
        """Use these input spikes (neurons rounded and clipped to the inputs, t to [0, t_max])."""
        t = np.clip(np.asarray(t, dtype=float), 0.0, self.t_max)
        neuron = np.clip(np.rint(np.asarray(neuron, dtype=float)), 0, self.network.n_inputs - 1)
        keep = np.isfinite(t) & np.isfinite(neuron)
        self.pattern_t, self.pattern_neuron = t[keep], neuron[keep].astype(int)
        if redraw_points:
            self._editing = True
            try:
                feed(
                    self.points_source,
                    {"t": self.pattern_t, "neuron": self.pattern_neuron.astype(float)},
                )
            finally:
                self._editing = False
        self.recompute()

    # ---- forward ----------------------------------------------------------------------------
    def _raster_data(self, outs) -> dict:
        t, row, layer, offset = [], [], [], 0
        for li, o in enumerate(outs):
            times = np.asarray(o.times[0])
            n, k = np.nonzero(np.isfinite(times))
            t.append(times[n, k]), row.append(n + offset), layer.append(np.full(n.size, li + 1))
            offset += o.n_neurons

        def cat(xs, dt):
            return np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)

        layers = cat(layer, int)
        return {
            "t": cat(t, float),
            "row": cat(row, float),
            "layer": layers,
            "color": [COLORS[(k - 1) % len(COLORS)] for k in layers],
        }

    def recompute(self) -> None:
        """Forward pass on the edited pattern; redraw outputs, traces and predictions."""
        net = self.network
        x = SpikeTrains.from_events(
            np.zeros(self.pattern_t.size, dtype=int),
            self.pattern_neuron,
            self.pattern_t,
            1,
            net.n_inputs,
        )
        self.result = [o.numpy() for o in net.forward(x, self.t_max)]
        out = self.result[-1]
        t = np.linspace(0.0, self.t_max, TRACE_POINTS)
        u = net.membrane(t, sample=0, layer=-1)
        feed(self.raster_source, self._raster_data(self.result))
        rows = sum(o.n_neurons for o in self.result)  # every layer's neurons, stacked
        self.raster_fig.y_range.update(start=-0.6, end=max(rows, 1) - 0.4)
        u = np.asarray(u)
        theta = float(net.layers[-1].theta)
        feed(
            self.trace_source,
            {
                "xs": [t] * len(u),
                "ys": list(u),
                "color": [COLORS[j % len(COLORS)] for j in range(len(u))],
                "neuron": list(range(len(u))),
            },
        )
        self.theta.location = theta
        low, high = (
            min(float(np.nanmin(u, initial=0.0)), 0.0),
            max(float(np.nanmax(u, initial=0.0)), theta),
        )
        pad = 0.05 * (high - low or 1.0)
        self.traces_fig.y_range.update(start=low - pad, end=high + pad)
        self.predictions = {
            "count": int(predict_count(out)[0]),
            "first spike": int(predict_first_spike(out)[0]),
        }
        counts = ", ".join(str(int(c)) for c in out.counts[0])
        first = ", ".join(f"{v:.3f}" if np.isfinite(v) else "none" for v in out.times[0, :, 0])
        note = (
            "\n\n*The session's network has too many inputs to edit by hand: showing the "
            "default 4 → 2 convergence network.*"
            if self._default
            else ""
        )
        self.info.object = (
            f"**{self.pattern_t.size} input spikes.**\n\n"
            f"Output spike counts: {counts}\n\nFirst output spikes [s]: {first}\n\n"
            f"**Prediction** by spike count (multi-spike): class {self.predictions['count']}; "
            f"by first spike (TTFS): class {self.predictions['first spike']}" + note
        )

    def update(self, batch: list) -> None:
        """Nothing streams here; press *Use the current weights* after training."""

    def reset(self) -> None:
        self.network = self._fetch_network()
        self._on_load()
