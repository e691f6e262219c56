"""Convergence heatmaps of paper Fig. 3 (docs/training.md §4, app-architecture.md §8) with a
drill-down.

Two ``hv.Image`` maps side by side, single-spike (TTFS) and multi-spike (spike count), on one fixed
colour scale: cells centre on the (μ, σ) grid values, not-yet-computed cells are NaN (light grey)
and fill in as the :class:`~batscope.training.sweep.SweepController` reports chunks. Tapping a cell
re-runs one of its runs (``run_single``) and shows its accuracy per epoch, its output raster and
its weights at a chosen epoch.
"""

from __future__ import annotations

import weakref
from functools import partial

import holoviews as hv
import numpy as np
import panel as pn
import param
from batscope.engine.convergence import PATTERNS, RunTrace
from batscope.training.sweep import VARIANTS, SweepCells, SweepController
from batscope.widgets.base import PlotView, error_alert, sweep_buttons, validated_input
from batscope.widgets.cluster import cluster_toggle, dashboard_html

if "bokeh" not in hv.Store.renderers:  # HoloViews view, usable before the app's hv.extension
    hv.extension("bokeh", logo=False)

TITLES = {
    "single": "Single-spike: TTFS cross-entropy, S = 1",
    "multi": "Multi-spike: spike-count loss, S = 10",
}
# 50 %: chance floor (docs/training.md §4, docs/losses.md §6)
CLIM = {"reference": (50.0, 100.0), "strict": (0.0, 100.0)}
MU = hv.Dimension("mu", label="μ (weight mean)")
SIGMA = hv.Dimension("sigma", label="σ (weight std)")
ACC = hv.Dimension("accuracy", label="best accuracy", unit="%", range=(0, 100))
RUNS = hv.Dimension("runs", label="runs done")
CELL_MU, CELL_SIGMA = hv.Dimension("cell_mu", label="μ"), hv.Dimension("cell_sigma", label="σ")
TOOLTIPS = [
    ("μ", "@{cell_mu}"),
    ("σ", "@{cell_sigma}"),
    ("best accuracy (%)", "@image{0.0}"),
    ("runs done", "@{runs}"),
]
ROWS = [f"p{p} {n}" for p in (0, 1) for n in ("in 0", "in 1", "in 2", "in 3", "out 0", "out 1")]


def _empty_grid(mu, sigma, predict):
    shape = (len(sigma), len(mu))
    return {
        "mu": np.asarray(mu, float),
        "sigma": np.asarray(sigma, float),
        "acc": np.full(shape, np.nan),
        "runs": np.zeros(shape),
        "clim": CLIM[predict],
    }


def _heatmap(data, title="", hooks=()):
    """``hv.Image`` with bounds so that each cell centres on its grid value."""
    mu, sigma = data["mu"], data["sigma"]
    dx = float(mu[1] - mu[0]) if mu.size > 1 else 0.2
    dy = float(sigma[1] - sigma[0]) if sigma.size > 1 else dx
    bounds = (mu[0] - dx / 2, sigma[0] - dy / 2, mu[-1] + dx / 2, sigma[-1] + dy / 2)
    grid_mu, grid_sigma = np.meshgrid(mu, sigma)
    arr = np.dstack([data["acc"], data["runs"], grid_mu, grid_sigma])[::-1]  # top row first
    vdims = [ACC, RUNS, CELL_MU, CELL_SIGMA]
    return hv.Image(arr, bounds=bounds, kdims=[MU, SIGMA], vdims=vdims).opts(
        hover_tooltips=TOOLTIPS,
        title=title,
        clim=data["clim"],
        cmap="viridis",
        colorbar=True,
        framewise=True,
        clipping_colors={"NaN": "lightgrey"},
        tools=["hover", "tap"],
        default_tools=["save", "pan", "wheel_zoom", "box_zoom", "reset"],
        width=380,
        height=330,
        hooks=list(hooks),
        shared_axes=False,
    )


def _accuracy_curve(data, hooks=()):
    return hv.Curve(data, "epoch", ACC).opts(
        title="Drill-down: accuracy per epoch",
        ylim=(-5, 105),
        width=380,
        height=230,
        tools=["hover"],
        shared_axes=False,
        framewise=True,
        hooks=list(hooks),
    )


def _raster(data, hooks=()):
    """Input and output spikes of both patterns at one epoch, one row per (pattern, neuron)."""
    return hv.Segments(data, kdims=["t", "y0", "t1", "y1"], vdims=["kind"]).opts(
        title="Drill-down: spikes at the epoch",
        color="kind",
        cmap={"input": "grey", "output 0": "#1f77b4", "output 1": "#d62728"},
        line_width=3,
        xlim=(-0.25, 10),
        ylim=(-0.6, 11.6),
        yticks=[(i, lbl) for i, lbl in enumerate(ROWS)],
        xlabel="t [s]",
        ylabel="",
        width=380,
        height=300,
        tools=["hover"],
        hooks=list(hooks),
        shared_axes=False,
    )


def _weights(data, hooks=()):
    w, m = data["w"], data["m"]
    return hv.Image(
        w[::-1], bounds=(-0.5, -0.5, 3.5, 1.5), kdims=["pre", "post"], vdims=["w"]
    ).opts(
        title="Drill-down: W[post, pre] at the epoch",
        cmap="RdBu_r",
        clim=(-m, m),
        colorbar=True,
        width=380,
        height=200,
        tools=["hover"],
        xticks=4,
        yticks=2,
        hooks=list(hooks),
        shared_axes=False,
        framewise=True,
    )


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
    return {"t": t0, "y0": y0 - 0.4, "t1": t0, "y1": y0 + 0.4, "kind": np.asarray(kind, str)}


def _on_cells(view_ref, batch):
    view = view_ref()
    if view is not None:
        view.update(batch)


def _on_tap(view_ref, variant, x=None, y=None):
    view = view_ref()
    if view is not None and x is not None and y is not None:
        view.drill_down(variant, x, y)


class ConvergenceView(PlotView):
    """Paper Fig. 3 heatmaps for a :class:`SweepController`, with controls and a drill-down.

    The view listens to its controller: every ``controller.poll()`` (the session's tick) feeds
    the new cells to ``update``. ``update(batch)`` takes ``list[SweepCells]``; other items
    (training ``Snapshot`` s) are ignored, so a session may also pass it any batch.
    """

    controller = param.ClassSelector(class_=SweepController)
    repeat = param.Integer(0, bounds=(0, None), doc="Which run of a tapped cell to drill into")
    epoch = param.Integer(0, bounds=(0, None), doc="Drill-down epoch shown in raster and weights")

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
        self._pipes = {v: hv.streams.Pipe(data=None) for v in VARIANTS}
        self._reset_grids()
        self.maps = {
            v: hv.DynamicMap(
                partial(_heatmap, title=TITLES[v], hooks=self.hooks), streams=[self._pipes[v]]
            )
            for v in VARIANTS
        }
        ref = weakref.ref(self)
        self.taps = {v: hv.streams.Tap(source=self.maps[v], x=None, y=None) for v in VARIANTS}
        for v, tap in self.taps.items():
            tap.add_subscriber(partial(_on_tap, ref, v))
        ctrl.add_listener(partial(_on_cells, ref))
        self._curve_pipe = hv.streams.Pipe(data=([], []))
        self._raster_pipe = hv.streams.Pipe(data=_segments(None, 0))
        self._weights_pipe = hv.streams.Pipe(data={"w": np.zeros((2, 4)), "m": 1.0})
        self.curve = hv.DynamicMap(
            partial(_accuracy_curve, hooks=self.hooks), streams=[self._curve_pipe]
        )
        self.raster = hv.DynamicMap(partial(_raster, hooks=self.hooks), streams=[self._raster_pipe])
        self.weights = hv.DynamicMap(
            partial(_weights, hooks=self.hooks), streams=[self._weights_pipe]
        )

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
                pn.Row(*(pn.pane.HoloViews(self.maps[v], linked_axes=False) for v in VARIANTS)),
                self.drill_title,
                pn.Row(
                    pn.pane.HoloViews(self.curve, linked_axes=False),
                    pn.pane.HoloViews(self.raster, linked_axes=False),
                ),
                pn.Row(pn.pane.HoloViews(self.weights, linked_axes=False), self.epoch_slider),
            ),
        )

    def __panel__(self):
        return self._layout

    # ---- heatmaps ---------------------------------------------------------------------------
    def _reset_grids(self, mu=None, sigma=None, predict=None) -> None:
        ctrl = self.controller
        if mu is None:
            cfg = ctrl.engine_config("multi")
            mu, sigma, predict = cfg.means, cfg.stds, cfg.tie_mode
        self._grids = {v: _empty_grid(mu, sigma, predict) for v in VARIANTS}
        for v in VARIANTS:
            self._pipes[v].send(self._grids[v])

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
            self._pipes[v].send(self._grids[v])

    def reset(self) -> None:
        """Grey grids for the current settings; the drill-down is cleared."""
        self._sweep_id = None
        self._reset_grids()
        self.trace, self.drill = None, None
        self._curve_pipe.send(([], []))
        self._raster_pipe.send(_segments(None, 0))
        self._weights_pipe.send({"w": np.zeros((2, 4)), "m": 1.0})
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
        epochs = np.arange(n_ep)
        self._curve_pipe.send((epochs, 100 * trace.accuracy))
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

    @param.depends("epoch", watch=True)
    def _show_epoch(self) -> None:
        if self.trace is None:
            return
        e = min(self.epoch, self.trace.accuracy.size - 1)
        self._raster_pipe.send(_segments(self.trace, e))
        self._weights_pipe.send({"w": self.trace.weights[e], "m": self._weights_max})
