"""Precision view: exact event-based spike times beside a clock-based simulation (paper motivation).

For the displayed sample, the exact spike times of the chosen layer (engine, closed form) are drawn
beside those of ``engine.clock`` at a chosen step dt, and a log-log curve shows how the clock-based
error (and the number of neurons whose spike count differs) grows with dt. The exact engine has no
time grid: its times are exact up to float rounding.
"""

from __future__ import annotations

import numpy as np
import panel as pn
import param
from batscope.engine.clock import METHODS, Comparison, compare, simulate_network
from batscope.widgets.base import PlotView
from batscope.widgets.live import add_hover, bokeh_pane, feed, whole_number_ticks
from batscope.widgets.provider import SessionInputs
from bokeh.models import ColumnDataSource, Legend, LegendItem, Range1d, Span

STEP_BUDGET = 3e8  # most (steps × neurons × samples) one clock simulation may cost
OFFSET = 0.15  # exact spikes drawn this far above their neuron's row, clock spikes below
DT_RANGE = (1e-5, 1e-1)  # the dt axes before a comparison (s)
ERROR_RANGE = (1e-9, 1e-1)  # the error axis before a comparison (s)


def _empty_spikes() -> dict:
    return {"t": np.zeros(0), "neuron": np.zeros(0)}


def _empty_curve() -> dict:
    return {"dt": np.zeros(0), "max": np.zeros(0), "mean": np.zeros(0)}


def _flat(trains, sample: int = 0, offset: float = 0.0) -> dict:
    """The spikes of one sample as points (t, neuron + ``offset``)."""
    t = np.asarray(trains.times[sample], dtype=np.float64)
    n, k = np.nonzero(np.isfinite(t))
    return {"t": t[n, k], "neuron": n.astype(float) + offset}


def _log_range(rng: Range1d, values, default: tuple) -> None:
    """Fit a log axis to the finite positive ``values`` (a factor 2 of room), else ``default``."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    start, end = (v.min() / 2, v.max() * 2) if v.size else default
    rng.update(start=float(start), end=float(end))


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
        self.spike_fig = self._spike_figure()
        self.error_fig = self._error_figure()
        self.mismatch_fig = self._mismatch_figure()
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
                pn.Column(bokeh_pane(self.spike_fig), bokeh_pane(self.mismatch_fig)),
                bokeh_pane(self.error_fig),
            ),
        )

    # -- the figures --------------------------------------------------------------------------
    def _spike_figure(self):
        """Exact spikes (circles, drawn just above their neuron) beside clock-based ones (x,
        just below)."""
        fig = self.figure("Spike times: exact (engine) vs clock-based", "t [s]", "neuron", 320)
        whole_number_ticks(fig.yaxis)
        self.exact_source = ColumnDataSource(_empty_spikes())
        self.clock_source = ColumnDataSource(_empty_spikes())
        exact = fig.scatter("t", "neuron", source=self.exact_source, size=8, color="#1f77b4")
        clock = fig.scatter(
            "t", "neuron", source=self.clock_source, size=8, marker="x", color="#d62728"
        )
        legend = Legend(
            items=[
                LegendItem(label="exact", renderers=[exact]),
                LegendItem(label="clock", renderers=[clock]),
            ],
            location="top_left",
        )
        fig.add_layout(legend)
        add_hover(fig, [exact, clock], [("t [s]", "@t{0.000000}"), ("neuron", "@neuron{0}")])
        return fig

    def _error_figure(self):
        """max and mean |t_clock − t_exact| against dt, log-log, a line ∝ dt, the chosen dt."""
        fig = self.figure(
            "Clock-based spike-time error vs step dt",
            "dt [s]",
            "|t error| [s]",
            320,
            anchor=False,
            x_axis_type="log",
            y_axis_type="log",
            x_range=Range1d(*DT_RANGE),
            y_range=Range1d(*ERROR_RANGE),
        )
        self.curve_source = ColumnDataSource(_empty_curve())
        self.slope_source = ColumnDataSource({"dt": np.zeros(0), "ref": np.zeros(0)})
        src, red, blue = self.curve_source, "#d62728", "#1f77b4"
        mx = [
            fig.line("dt", "max", source=src, color=red, line_width=2),
            fig.scatter("dt", "max", source=src, color=red, size=6),
        ]
        mean = fig.line("dt", "mean", source=src, color=blue, line_width=2)
        slope = fig.line(
            "dt", "ref", source=self.slope_source, color="grey", line_dash="dashed", line_width=2
        )
        self.chosen = Span(dimension="height", location=1e-3, line_color="black", visible=False)
        fig.add_layout(self.chosen)
        items = [
            LegendItem(label="max |t_clock − t_exact|", renderers=mx),
            LegendItem(label="mean |t_clock − t_exact|", renderers=[mean]),
            LegendItem(label="∝ dt", renderers=[slope]),
        ]
        fig.add_layout(Legend(items=items, location="bottom_right"))
        add_hover(fig, [mx[1]], [("dt [s]", "@dt"), ("max", "@max"), ("mean", "@mean")])
        return fig

    def _mismatch_figure(self):
        """How many neurons' spike counts differ from the exact ones, against dt."""
        fig = self.figure(
            "Neurons whose spike count differs from the exact one",
            "dt [s]",
            "count mismatches",
            200,
            anchor=False,
            x_axis_type="log",
            x_range=Range1d(*DT_RANGE),
            y_range=Range1d(0, 1),
        )
        self.mismatch_source = ColumnDataSource({"dt": np.zeros(0), "mismatch": np.zeros(0)})
        fig.line("dt", "mismatch", source=self.mismatch_source, color="#9467bd", line_width=2)
        marks = fig.scatter("dt", "mismatch", source=self.mismatch_source, color="#9467bd", size=6)
        add_hover(fig, [marks], [("dt [s]", "@dt"), ("mismatches", "@mismatch{0}")])
        return fig

    def _show(self, exact, clock, dts, comps) -> None:
        """Draw a comparison (``exact`` and ``clock``: the layer's trains at the chosen dt)."""
        feed(self.exact_source, _flat(exact, offset=OFFSET))
        feed(self.clock_source, _flat(clock, offset=-OFFSET))
        mx = np.array([c.max_abs_error for c in comps])
        mean = np.array([c.mean_abs_error for c in comps])
        ok = np.isfinite(mx) & (mx > 0)
        feed(self.curve_source, {"dt": dts[ok], "max": mx[ok], "mean": mean[ok]})
        ref = dts * (np.max(mx[ok] / dts[ok]) if ok.any() else 1.0)
        feed(self.slope_source, {"dt": dts, "ref": ref})
        mismatch = np.array([c.count_mismatch for c in comps], dtype=float)
        feed(self.mismatch_source, {"dt": dts, "mismatch": mismatch})
        for fig in (self.error_fig, self.mismatch_fig):
            _log_range(fig.x_range, [*dts, self.dt], DT_RANGE)
        _log_range(self.error_fig.y_range, [*mx[ok], *mean[ok], *ref], ERROR_RANGE)
        self.mismatch_fig.y_range.update(start=0.0, end=max(float(mismatch.max()), 1.0) * 1.1)
        self.chosen.update(location=float(self.dt), visible=True)

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
        self._show(exact[layer], clock[layer], dts, comps)
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
        for source in (self.exact_source, self.clock_source):
            feed(source, _empty_spikes())
        feed(self.curve_source, _empty_curve())
        feed(self.slope_source, {"dt": np.zeros(0), "ref": np.zeros(0)})
        feed(self.mismatch_source, {"dt": np.zeros(0), "mismatch": np.zeros(0)})
        self.chosen.visible = False
        self.summary.object = "Press **Compare**."
