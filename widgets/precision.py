"""Precision view: exact event-based spike times beside a clock-based simulation (paper motivation).

For the displayed sample, the exact spike times of the chosen layer (engine, closed form) are drawn
beside those of ``engine.clock`` at a chosen step dt, and a log-log curve shows how the clock-based
error (and the number of neurons whose spike count differs) grows with dt. The exact engine has no
time grid: its times are exact up to float rounding.
"""

from __future__ import annotations

from functools import partial

import holoviews as hv
import numpy as np
import panel as pn
import param
from batscope.engine.clock import METHODS, Comparison, compare, simulate_network
from batscope.widgets.base import PlotView
from batscope.widgets.provider import SessionInputs

if "bokeh" not in hv.Store.renderers:  # HoloViews view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

STEP_BUDGET = 3e8  # most (steps × neurons × samples) one clock simulation may cost
EMPTY_SPIKES = {"t": np.zeros(0), "neuron": np.zeros(0)}
EMPTY_CURVE = {
    "dt": np.zeros(0),
    "max": np.zeros(0),
    "mean": np.zeros(0),
    "mismatch": np.zeros(0),
    "chosen": np.nan,
}


def _spikes(data, label, color, marker, offset, hooks=()):
    return hv.Scatter((data["t"], data["neuron"] + offset), "t", "neuron", label=label).opts(
        color=color,
        marker=marker,
        size=8,
        tools=["hover"],
        width=520,
        height=320,
        xlabel="t [s]",
        ylabel="neuron",
        framewise=True,
        hooks=list(hooks),
        shared_axes=False,
        title="Exact (engine) vs clock-based spike times, displayed sample",
        legend_position="top_left",
    )


def _flat(trains, sample: int = 0):
    t = np.asarray(trains.times[sample], dtype=np.float64)
    n, k = np.nonzero(np.isfinite(t))
    return {"t": t[n, k], "neuron": n.astype(float)}


def _error_curves(data, hooks=()):
    dt = data["dt"]
    ok = np.isfinite(data["max"]) & (data["max"] > 0)
    ref = dt * (np.nanmax(data["max"][ok] / dt[ok]) if ok.any() else 1.0)
    opts = dict(logx=True, logy=True, framewise=True, tools=["hover"], shared_axes=False)
    mx = hv.Curve((dt[ok], data["max"][ok]), "dt", "error", label="max |t_clock − t_exact|")
    mean = hv.Curve((dt[ok], data["mean"][ok]), "dt", "error", label="mean |t_clock − t_exact|")
    slope = hv.Curve((dt, ref), "dt", "error", label="∝ dt").opts(color="grey", line_dash="dashed")
    chosen = hv.VLine(data["chosen"] if np.isfinite(data["chosen"]) else 0).opts(
        color="black", line_width=1, visible=bool(np.isfinite(data["chosen"]))
    )
    return (
        mx.opts(color="#d62728")
        * hv.Scatter((dt[ok], data["max"][ok]), "dt", "error").opts(color="#d62728", size=6)
        * mean.opts(color="#1f77b4")
        * slope
        * chosen
    ).opts(
        hv.opts.Curve(**opts),
        hv.opts.Scatter(**opts),
        hv.opts.Overlay(
            title="Clock-based spike-time error vs step dt",
            xlabel="dt [s]",
            ylabel="|t error| [s]",
            width=520,
            height=320,
            logx=True,
            logy=True,
            legend_position="bottom_right",
            hooks=list(hooks),
        ),
    )


def _mismatch(data, hooks=()):
    return hv.Curve((data["dt"], data["mismatch"]), "dt", "mismatch").opts(
        logx=True,
        framewise=True,
        width=520,
        height=200,
        color="#9467bd",
        tools=["hover"],
        title="Neurons whose spike count differs from the exact one",
        xlabel="dt [s]",
        ylabel="count mismatches",
        shared_axes=False,
        hooks=list(hooks),
    ) * hv.Scatter((data["dt"], data["mismatch"]), "dt", "mismatch").opts(
        color="#9467bd", size=6, framewise=True
    )


class PrecisionView(PlotView):
    """Exact vs clock-based spikes at ``dt``, and the error-vs-dt curve, on *Compare*.

    Providers as for :class:`~batscope.widgets.gradcheck.GradCheckView`; the displayed sample
    and layer come from the ``ViewConfig`` (layer 0, the input, shows the first layer).
    """

    compare = param.Event(label="Compare")
    dt = param.Number(
        1e-3, bounds=(1e-7, 1.0), label="dt [s]", doc="Clock step dt [s] for the spike plot"
    )
    dt_min = param.Number(
        1e-5, bounds=(1e-7, 1.0), label="curve: smallest dt [s]", doc="Smallest dt of the curve [s]"
    )
    dt_max = param.Number(
        1e-1, bounds=(1e-6, 1.0), label="curve: largest dt [s]", doc="Largest dt of the curve [s]"
    )
    n_dt = param.Integer(
        7, bounds=(2, 25), label="curve: points", doc="Points on the dt curve (log-spaced)"
    )
    method = param.Selector(
        default="euler",
        objects=list(METHODS),
        label="clock integrator",
        doc="euler: forward Euler; exact: exact propagator, grid-only error",
    )

    def __init__(self, view_config=None, network_provider=None, training_provider=None, **params):
        super().__init__(view_config=view_config, **params)
        self.inputs = SessionInputs(network_provider, training_provider)
        self.comparisons: list[Comparison] = []
        self.at_dt: Comparison | None = None
        self._exact_pipe = hv.streams.Pipe(data=EMPTY_SPIKES)
        self._clock_pipe = hv.streams.Pipe(data=EMPTY_SPIKES)
        self._curve_pipe = hv.streams.Pipe(data=EMPTY_CURVE)
        h = self.hooks
        self.spike_plot = hv.DynamicMap(
            partial(_spikes, label="exact", color="#1f77b4", marker="circle", offset=0.15, hooks=h),
            streams=[self._exact_pipe],
        ) * hv.DynamicMap(
            partial(_spikes, label="clock", color="#d62728", marker="x", offset=-0.15, hooks=h),
            streams=[self._clock_pipe],
        )
        self.error_plot = hv.DynamicMap(partial(_error_curves, hooks=h), streams=[self._curve_pipe])
        self.mismatch_plot = hv.DynamicMap(partial(_mismatch, hooks=h), streams=[self._curve_pipe])
        self.summary = pn.pane.Markdown("Press **Compare**.", css_classes=["precision-summary"])
        widgets = pn.Param(
            self.param,
            parameters=["dt", "dt_min", "dt_max", "n_dt", "method"],
            widgets={
                k: {"type": pn.widgets.FloatInput, "step": 1e-4} for k in ("dt", "dt_min", "dt_max")
            },
            show_name=False,
            sort=False,
            width=250,
        )
        button = pn.widgets.Button.from_param(self.param.compare, color="primary")
        self._layout = pn.Column(
            pn.pane.Markdown("### Precision: exact event-based vs clock-based simulation"),
            pn.Row(
                pn.Column(widgets, button, self.summary, width=280),
                pn.Column(
                    pn.pane.HoloViews(self.spike_plot, linked_axes=False),
                    pn.pane.HoloViews(self.mismatch_plot, linked_axes=False),
                ),
                pn.pane.HoloViews(self.error_plot, linked_axes=False),
            ),
        )

    def __panel__(self):
        return self._layout

    def dts(self) -> np.ndarray:
        lo, hi = sorted((self.dt_min, self.dt_max))
        return np.logspace(np.log10(lo), np.log10(hi), self.n_dt)

    @param.depends("compare", watch=True)
    def run_compare(self) -> list[Comparison] | None:
        """Exact forward once, then one clock simulation per dt; results go to the plots."""
        try:
            training = self.inputs.training()
            net = self.inputs.network()
            x, _ = self.inputs.samples(self.view_config.sample_index, 1, training)
            t_max = self.inputs.t_max(training)
            cost = sum(layer.n for layer in net.layers) * t_max
            dts = self.dts()
            steps = cost / min(dts.min(), self.dt)
            if steps > STEP_BUDGET:
                raise ValueError(
                    f"dt too small for this network: {steps:.1e} neuron-steps "
                    f"(limit {STEP_BUDGET:.0e}); raise dt or dt min"
                )
            layer = min(max(self.view_config.layer, 1), len(net.layers)) - 1
            exact = [o.numpy() for o in net.forward(x, t_max)]
            clock = simulate_network(net, x, t_max, self.dt, self.method)
            comps = [
                compare(
                    exact[layer], simulate_network(net, x, t_max, float(dt), self.method)[layer]
                )
                for dt in dts
            ]
        except (ValueError, TypeError, FileNotFoundError) as exc:
            self.summary.object = f"**Cannot compare:** {exc}"
            return None
        self.comparisons = comps
        self.at_dt = compare(exact[layer], clock[layer])
        self._exact_pipe.send(_flat(exact[layer]))
        self._clock_pipe.send(_flat(clock[layer]))
        self._curve_pipe.send(
            {
                "dt": dts,
                "max": np.array([c.max_abs_error for c in comps]),
                "mean": np.array([c.mean_abs_error for c in comps]),
                "mismatch": np.array([c.count_mismatch for c in comps], dtype=float),
                "chosen": float(self.dt),
            }
        )
        c = self.at_dt
        self.summary.object = (
            f"Layer {layer + 1}, sample {self.view_config.sample_index}, {self.method} clock at "
            f"dt = {self.dt:g} s: {c.exact_spikes} exact vs {c.clock_spikes} clock spikes, "
            f"{c.count_mismatch} of {c.pairs} neurons with a different count, max |Δt| = "
            f"{c.max_abs_error:.3g} s, mean {c.mean_abs_error:.3g} s over {c.matched} matched "
            "spikes. The exact engine has no grid: its spike times are exact up to float "
            "rounding, while a clock-based simulator's error grows with dt."
        )
        return comps

    def update(self, batch: list) -> None:
        """Nothing streams here: the comparison runs on demand."""

    def reset(self) -> None:
        self.comparisons, self.at_dt = [], None
        self._exact_pipe.send(EMPTY_SPIKES)
        self._clock_pipe.send(EMPTY_SPIKES)
        self._curve_pipe.send(EMPTY_CURVE)
        self.summary.object = "Press **Compare**."
