"""Toy pattern editor: drag, add or delete input spikes and watch the network respond at once.

The input spikes of a small pattern are draggable points (``hv.streams.PointDraw`` on ``hv.Points``
with kdims t, neuron): drag a point to move a spike, click on empty space to add one, select and
press Backspace/Delete to remove one. After every edit the network runs forward on the edited
pattern (exact event-based simulation, docs/forward.md §5) and the output spikes, the output
membrane traces u(t) (docs/model.md §3, docs/forward.md §4) and the predictions are redrawn.
"""

from __future__ import annotations

import weakref
from functools import partial

import holoviews as hv
import numpy as np
import panel as pn
import param
from batscope.engine.losses import predict_count, predict_first_spike
from batscope.engine.network import Network
from batscope.engine.spikes import SpikeTrains
from batscope.widgets.base import PlotView
from batscope.widgets.provider import SessionInputs, default_network, default_training

if "bokeh" not in hv.Store.renderers:  # HoloViews view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

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


def _points(data, t_max, n_inputs, hooks=()):
    return hv.Points(data, kdims=["t", "neuron"]).opts(
        size=11,
        color="#1f77b4",
        line_color="black",
        tools=["hover"],
        active_tools=["point_draw"],
        xlim=(-0.02 * t_max, t_max),
        ylim=(-0.6, n_inputs - 0.4),
        yticks=list(range(n_inputs)),
        title="Input spikes: drag to move, click to add, select + Delete to remove",
        xlabel="t [s]",
        ylabel="input neuron",
        width=620,
        height=240,
        hooks=list(hooks),
        shared_axes=False,
    )


def _outputs(data, hooks=()):
    return hv.Scatter(data, "t", ["row", "layer"]).opts(
        color="layer",
        cmap="Category10",
        size=9,
        marker="dash",
        angle=90,
        line_width=3,
        tools=["hover"],
        xlim=data["xlim"],
        ylim=(-0.6, max(data["rows"], 1) - 0.4),
        title="Network spikes (rows: neurons, layer by layer)",
        xlabel="t [s]",
        ylabel="neuron (all layers)",
        width=620,
        height=220,
        framewise=True,
        hooks=list(hooks),
        shared_axes=False,
    )


def _traces(data, hooks=()):
    paths = [{"t": data["t"], "u": u, "neuron": float(j % 10)} for j, u in enumerate(data["u"])]
    return hv.Path(paths, kdims=["t", "u"], vdims=["neuron"]).opts(
        color="neuron",
        cmap=COLORS,
        clim=(-0.5, 9.5),  # neuron j gets COLORS[j % 10]
        line_width=2,
        tools=["hover"],
        framewise=True,
        title="Output membrane potentials u(t) (dashed: threshold θ)",
        xlabel="t [s]",
        ylabel="u",
        width=620,
        height=260,
        hooks=list(hooks),
        shared_axes=False,
    ) * hv.HLine(data["theta"]).opts(color="grey", line_dash="dashed")


def _on_edit(view_ref, data=None):
    view = view_ref()
    if view is not None and data is not None:
        view.set_pattern(data["t"], data["neuron"], redraw_points=False)


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
        self._points_pipe = hv.streams.Pipe(data={"t": np.zeros(0), "neuron": np.zeros(0)})
        self.points = hv.DynamicMap(
            partial(_points, t_max=self.t_max, n_inputs=n_in, hooks=self.hooks),
            streams=[self._points_pipe],
        )
        self.draw = hv.streams.PointDraw(
            source=self.points, num_objects=MAX_SPIKES, add=True, drag=True
        )
        self.draw.add_subscriber(partial(_on_edit, weakref.ref(self)))
        self._out_pipe = hv.streams.Pipe(data=self._raster_data([]))
        self._trace_pipe = hv.streams.Pipe(
            data={"t": np.zeros(2), "u": np.zeros((0, 2)), "theta": 1.0}
        )
        self.raster = hv.DynamicMap(partial(_outputs, hooks=self.hooks), streams=[self._out_pipe])
        self.traces = hv.DynamicMap(partial(_traces, hooks=self.hooks), streams=[self._trace_pipe])
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
                    pn.pane.HoloViews(self.points, linked_axes=False),
                    pn.pane.HoloViews(self.raster, linked_axes=False),
                    pn.pane.HoloViews(self.traces, linked_axes=False),
                ),
                self.info,
            ),
        )
        self._on_load()

    def __panel__(self):
        return self._layout

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
            data = {"t": self.pattern_t, "neuron": self.pattern_neuron.astype(float)}
            self._points_pipe.send(data)
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

        return {
            "t": cat(t, float),
            "row": cat(row, float),
            "layer": cat(layer, float),
            "rows": offset,
            "xlim": (-0.02 * self.t_max, self.t_max),
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
        self._out_pipe.send(self._raster_data(self.result))
        self._trace_pipe.send({"t": t, "u": np.asarray(u), "theta": net.layers[-1].theta})
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
