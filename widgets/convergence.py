"""Convergence heatmaps of paper Fig. 3 (docs/training.md §4, app-architecture.md §8) with a
drill-down.

Two heatmaps side by side (Bokeh image glyphs), single-spike (TTFS) and multi-spike (spike
count), on one fixed colour scale: cells centre on the (μ, σ) grid values, not-yet-computed cells
are NaN (light grey) and fill in as the :class:`~batscope.training.sweep.SweepController`
reports chunks. Tapping a cell re-runs one of its runs (``run_single``) and shows its accuracy
per epoch, its output raster and its weights at a chosen epoch.
"""

from __future__ import annotations

import weakref
from functools import partial

import numpy as np
import panel as pn
import param
from batscope.engine.convergence import PATTERNS, RunTrace
from batscope.training.sweep import VARIANTS, SweepCells, SweepController
from batscope.widgets.base import PlotView, error_alert, sweep_buttons, validated_input
from batscope.widgets.cluster import cluster_toggle, dashboard_html
from batscope.widgets.live import (
    add_colorbar,
    add_hover,
    add_image,
    bokeh_pane,
    feed,
    image_data,
    set_limit,
    symmetric_mapper,
)
from bokeh.events import Tap
from bokeh.models import ColumnDataSource, FixedTicker, LinearColorMapper, Range1d
from bokeh.palettes import Viridis256

TITLES = {
    "single": "Single-spike: TTFS cross-entropy, S = 1",
    "multi": "Multi-spike: spike-count loss, S = 10",
}
# 50 %: chance floor (docs/training.md §4, docs/losses.md §6)
CLIM = {"reference": (50.0, 100.0), "strict": (0.0, 100.0)}
TOOLTIPS = [
    ("μ", "@{cell_mu}"),
    ("σ", "@{cell_sigma}"),
    ("best accuracy (%)", "@image{0.0}"),
    ("runs done", "@{runs}"),
]
ROWS = [f"p{p} {n}" for p in (0, 1) for n in ("in 0", "in 1", "in 2", "in 3", "out 0", "out 1")]
KIND_COLORS = {"input": "grey", "output 0": "#1f77b4", "output 1": "#d62728"}


def _empty_grid(mu, sigma, predict):
    shape = (len(sigma), len(mu))
    return {
        "mu": np.asarray(mu, float),
        "sigma": np.asarray(sigma, float),
        "acc": np.full(shape, np.nan),
        "runs": np.zeros(shape),
        "clim": CLIM[predict],
    }


def _bounds(grid) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of the map: each cell centred on its (μ, σ) grid value."""
    mu, sigma = grid["mu"], grid["sigma"]
    dx = float(mu[1] - mu[0]) if mu.size > 1 else 0.2
    dy = float(sigma[1] - sigma[0]) if sigma.size > 1 else dx
    return mu[0] - dx / 2, sigma[0] - dy / 2, mu[-1] + dx / 2, sigma[-1] + dy / 2


def _heatmap_data(grid) -> dict:
    """The image columns of a grid (row 0, σ's first value, at the bottom), with the runs and
    each cell's (μ, σ) as images of the same shape for the hover."""
    x0, y0, x1, y1 = _bounds(grid)
    grid_mu, grid_sigma = np.meshgrid(grid["mu"], grid["sigma"])
    return {
        # copies: the grid fills in place, and the source must hold what was sent
        "image": [np.array(grid["acc"], dtype=np.float64)],
        "runs": [np.array(grid["runs"], dtype=np.float64)],
        "cell_mu": [grid_mu],
        "cell_sigma": [grid_sigma],
        "x": np.array([x0]),
        "y": np.array([y0]),
        "dw": np.array([x1 - x0]),
        "dh": np.array([y1 - y0]),
    }


def _segments(trace: RunTrace | None, epoch: int) -> dict:
    t0, y0, kind = [], [], []
    if trace is not None:
        for p in (0, 1):
            for i, t in enumerate(PATTERNS[p]):
                t0.append(t), y0.append(6 * p + i), kind.append("input")
            times = trace.times[epoch, p]  # [2 outputs, S]
            for j in (0, 1):
                for t in times[j][np.isfinite(times[j])]:
                    t0.append(float(t)), y0.append(6 * p + 4 + j), kind.append(f"output {j}")
    t0, y0 = np.asarray(t0, float), np.asarray(y0, float)
    return {
        "t": t0,
        "y0": y0 - 0.4,
        "t1": t0,
        "y1": y0 + 0.4,
        "kind": list(kind),
        "color": [KIND_COLORS[k] for k in kind],
    }


def _on_cells(view_ref, batch):
    view = view_ref()
    if view is not None:
        view.update(batch)


class ConvergenceView(PlotView):
    """Paper Fig. 3 heatmaps for a :class:`SweepController`, with controls and a drill-down.

    The view listens to its controller: every ``controller.poll()`` (the session's tick) feeds
    the new cells to ``update``. ``update(batch)`` takes ``list[SweepCells]``; other items
    (training ``Snapshot`` s) are ignored, so a session may also pass it any batch.
    """

    controller = param.ClassSelector(class_=SweepController)
    repeat = param.Integer(0, bounds=(0, None), doc="Which run of a tapped cell to drill into")
    epoch = param.Integer(0, bounds=(0, None), doc="Drill-down epoch shown in raster and weights")
    drilled = param.Event(doc="Triggered after a tapped cell's run was re-run and drawn")

    def __init__(self, controller: SweepController | None = None, view_config=None, **params):
        super().__init__(
            view_config=view_config, controller=controller or SweepController(), **params
        )
        ctrl = self.controller
        cfg = ctrl.config
        self._grids: dict[str, dict] = {}
        self._sweep_id = None
        self.trace: RunTrace | None = None
        self.drill: tuple | None = None  # (variant, mu index, sigma index, repeat)
        self.sources = {v: ColumnDataSource() for v in VARIANTS}  # filled by _reset_grids
        self.mappers = {
            v: LinearColorMapper(palette=Viridis256, low=50.0, high=100.0, nan_color="lightgrey")
            for v in VARIANTS
        }
        self.maps = {v: self._heatmap_figure(v) for v in VARIANTS}
        self._reset_grids()
        ctrl.add_listener(partial(_on_cells, weakref.ref(self)))
        self.curve_fig, self.raster_fig, self.weights_fig = self._drill_figures()
        self._show_epoch()

        alert = error_alert()
        inputs = [
            validated_input(cfg, name, alert, label)
            for name, label in (
                ("mu_max", "μ max"),
                ("sigma_max", "σ max"),
                ("step", "grid step Δ"),
                ("repeats", "repeats per cell"),
                ("epochs", "epochs"),
                ("seed", "seed"),
                ("predict", "tie / silence rule"),
            )
        ]
        for w in inputs:
            w.width = 240
        variants = pn.widgets.CheckButtonGroup.from_param(ctrl.param.variants, label="")
        backend = pn.widgets.Select.from_param(
            ctrl.param.backend,
            label="backend",
            visible=len(ctrl.param.backend.objects) > 1,
            width=240,
        )
        run, stop, self.progress = sweep_buttons(ctrl, "Run sweep", "Stop")
        self.status = pn.pane.Markdown("", css_classes=["sweep-status"], margin=(0, 5))
        ctrl.param.watch(
            self._on_progress, ["status", "cells_done", "cells_total", "elapsed_s", "message"]
        )
        self._on_progress()
        self.drill_title = pn.pane.Markdown("**Drill-down:** tap a cell of either map.")
        repeat = pn.widgets.IntInput.from_param(
            self.param.repeat, label="run (repeat) to show", width=240
        )
        self.epoch_slider = pn.widgets.IntSlider.from_param(
            self.param.epoch, label="epoch", start=0, end=1
        )
        self._controls = pn.Column(
            pn.pane.Markdown("### Convergence sweep (paper Fig. 3)"),
            *inputs,
            backend,
            variants,
            *([cluster_toggle(ctrl.cluster)] if ctrl.cluster is not None else []),
            pn.Row(run, stop),
            self.progress,
            self.status,
            alert,
            repeat,
            width=260,
        )
        self._layout = pn.Row(
            self._controls,
            pn.Column(
                pn.Row(*(bokeh_pane(self.maps[v]) for v in VARIANTS), sizing_mode="stretch_width"),
                self.drill_title,
                pn.Row(
                    bokeh_pane(self.curve_fig),
                    bokeh_pane(self.raster_fig),
                    sizing_mode="stretch_width",
                ),
                pn.Row(
                    bokeh_pane(self.weights_fig), self.epoch_slider, sizing_mode="stretch_width"
                ),
                sizing_mode="stretch_width",
            ),
        )

    def __panel__(self):
        return self._layout

    # ---- the figures ------------------------------------------------------------------------
    def _heatmap_figure(self, variant: str):
        """Best accuracy per (μ, σ) cell; a tap on a cell drills into one of its runs."""
        fig = self.figure(
            TITLES[variant],
            "μ (weight mean)",
            "σ (weight std)",
            330,
            anchor=False,
            x_range=Range1d(-0.5, 0.5),
            y_range=Range1d(-0.5, 0.5),
        )
        image = add_image(fig, self.sources[variant], self.mappers[variant])
        add_colorbar(fig, self.mappers[variant], "best accuracy (%)")
        add_hover(fig, [image], TOOLTIPS)
        fig.on_event(Tap, partial(_tapped, weakref.ref(self), variant))
        return fig

    def _drill_figures(self):
        """The drill-down: accuracy per epoch, the spikes and the weights at one epoch."""
        curve = self.figure(
            "Drill-down: accuracy per epoch",
            "epoch",
            "best accuracy (%)",
            230,
            y_range=Range1d(-5, 105),
        )
        self.curve_source = ColumnDataSource({"epoch": np.zeros(0), "accuracy": np.zeros(0)})
        line = curve.line("epoch", "accuracy", source=self.curve_source, line_width=2)
        add_hover(curve, [line], [("epoch", "@epoch"), ("accuracy (%)", "@accuracy{0.0}")])
        raster = self.figure(
            "Drill-down: spikes at the epoch",
            "t [s]",
            "",
            300,
            x_range=Range1d(-0.25, 10),
            y_range=Range1d(-0.6, 11.6),
        )
        raster.yaxis.ticker = FixedTicker(ticks=list(range(len(ROWS))))
        raster.yaxis.major_label_overrides = {i: label for i, label in enumerate(ROWS)}
        self.raster_source = ColumnDataSource(_segments(None, 0))
        marks = raster.segment(
            "t", "y0", "t1", "y1", source=self.raster_source, color="color", line_width=3
        )
        add_hover(raster, [marks], [("t [s]", "@t{0.000}"), ("spike", "@kind")])
        weights = self.figure(
            "Drill-down: W[post, pre] at the epoch",
            "pre",
            "post",
            200,
            x_range=Range1d(-0.5, 3.5),
            y_range=Range1d(-0.5, 1.5),
        )
        weights.xaxis.ticker = FixedTicker(ticks=[0, 1, 2, 3])
        weights.yaxis.ticker = FixedTicker(ticks=[0, 1])
        self.weights_mapper = symmetric_mapper()
        self.weights_source = ColumnDataSource(_weights_data(np.zeros((2, 4))))
        cells = add_image(weights, self.weights_source, self.weights_mapper)
        add_colorbar(weights, self.weights_mapper, "w")
        add_hover(weights, [cells], [("w", "@image{0.000}")])
        return curve, raster, weights

    # ---- heatmaps ---------------------------------------------------------------------------
    def _reset_grids(self, mu=None, sigma=None, predict=None) -> None:
        ctrl = self.controller
        if mu is None:
            cfg = ctrl.engine_config("multi")
            mu, sigma, predict = cfg.means, cfg.stds, cfg.tie_mode
        self._grids = {v: _empty_grid(mu, sigma, predict) for v in VARIANTS}
        for v in VARIANTS:
            self._draw(v)
            x0, y0, x1, y1 = _bounds(self._grids[v])
            self.maps[v].x_range.update(start=float(x0), end=float(x1))
            self.maps[v].y_range.update(start=float(y0), end=float(y1))

    def _draw(self, variant: str) -> None:
        grid = self._grids[variant]
        feed(self.sources[variant], _heatmap_data(grid))
        low, high = grid["clim"]
        if (self.mappers[variant].low, self.mappers[variant].high) != (low, high):
            self.mappers[variant].update(low=low, high=high)

    def update(self, batch: list) -> None:
        """Fill the cells of every :class:`SweepCells` in ``batch`` (others are ignored)."""
        changed = set()
        for item in batch:
            if not isinstance(item, SweepCells):
                continue
            if item.sweep_id != self._sweep_id:
                self._sweep_id = item.sweep_id
                self._reset_grids(item.mu, item.sigma, item.predict)
                changed.update(VARIANTS)
            g = self._grids[item.variant]
            g["acc"][item.sigma_index, item.mu_index] = item.accuracy
            g["runs"][item.sigma_index, item.mu_index] = item.runs
            changed.add(item.variant)
        for v in changed:
            self._draw(v)

    def reset(self) -> None:
        """Grey grids for the current settings; the drill-down is cleared."""
        self._sweep_id = None
        self._reset_grids()
        self.trace, self.drill = None, None
        feed(self.curve_source, {"epoch": np.zeros(0), "accuracy": np.zeros(0)})
        self._show_epoch()
        self.drill_title.object = "**Drill-down:** tap a cell of either map."

    def _on_progress(self, *events) -> None:
        c = self.controller
        if c.status in ("queued", "running") and c.sweep_id != self._sweep_id:
            self._sweep_id = c.sweep_id  # a new sweep: grey grids at once, before any cell
            s = c.settings
            self._reset_grids(s["mu"], s["sigma"], s["predict"])
        self.progress.max = max(c.cells_total, 1)
        self.progress.value = min(c.cells_done, self.progress.max)
        text = f"**{c.status}** · cells {c.cells_done}/{c.cells_total} · {c.elapsed_s:.1f} s"
        if c.status == "queued":
            text += " · waiting for a free training slot"
        text += dashboard_html(c.dashboard_link)  # the server's scheduler's, never a browser's
        if c.message:
            text += f"\n\n{c.message}"
        self.status.object = text

    # ---- drill-down -------------------------------------------------------------------------
    def drill_down(self, variant: str, x: float, y: float) -> None:
        """Re-run the run ``repeat`` of the cell nearest to (μ = x, σ = y) of ``variant``."""
        g = self._grids[variant]
        i_mu = int(np.abs(g["mu"] - x).argmin())
        i_sigma = int(np.abs(g["sigma"] - y).argmin())
        repeat = min(self.repeat, self.controller.engine_config(variant).repeats - 1)
        try:
            trace = self.controller.drill_down(variant, i_mu, i_sigma, repeat)
        except ValueError as exc:
            self.drill_title.object = f"**Drill-down:** {exc}"
            return
        self.trace, self.drill = trace, (variant, i_mu, i_sigma, repeat)
        n_ep = trace.accuracy.size
        feed(self.curve_source, {"epoch": np.arange(n_ep), "accuracy": 100 * trace.accuracy})
        full = np.flatnonzero(trace.accuracy == 1)
        self.drill_title.object = (
            f"**Drill-down:** {variant}-spike, μ = {trace.mean:g}, σ = {trace.std:g}, run "
            f"{repeat}: best accuracy {100 * trace.best:.0f} %"
            + (f", first 100 % at epoch {full[0]}" if full.size else ", never 100 %")
        )
        self.param.epoch.bounds = (0, n_ep - 1)
        self.epoch_slider.end = n_ep - 1
        self._weights_max = float(np.abs(trace.weights).max()) or 1.0
        if self.epoch != n_ep - 1:
            self.epoch = n_ep - 1  # triggers _show_epoch
        else:
            self._show_epoch()
        self.param.trigger("drilled")

    @param.depends("epoch", watch=True)
    def _show_epoch(self) -> None:
        if self.trace is None:
            feed(self.raster_source, _segments(None, 0))
            feed(self.weights_source, _weights_data(np.zeros((2, 4))))
            set_limit(self.weights_mapper, 1.0)
            return
        e = min(self.epoch, self.trace.accuracy.size - 1)
        feed(self.raster_source, _segments(self.trace, e))
        feed(self.weights_source, _weights_data(self.trace.weights[e]))
        set_limit(self.weights_mapper, self._weights_max)


def _weights_data(w) -> dict:
    """W[post, pre] (2 × 4) as an image, post neuron j in row j (at height j), pre i at x = i."""
    return image_data(np.asarray(w, dtype=np.float64), -0.5, -0.5, 3.5, 1.5)


def _tapped(view_ref, variant: str, event) -> None:
    view = view_ref()
    if view is not None and event.x is not None and event.y is not None:
        view.drill_down(variant, float(event.x), float(event.y))
