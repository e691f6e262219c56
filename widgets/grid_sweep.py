"""The Sweeps tab: the session's setup over one or two run settings × seeds, filled in as runs end.

Renders a :class:`~batscope.training.grid_sweep.GridSweepController`: the axes (a dotted field
of the run configuration and its values, as ``batscope sweep --set``), the seeds, "use cluster",
Start and Cancel, a heatmap of the final accuracy (mean over the seeds that have ended; grey
until a cell's first run ends) and a table with one row per run. The status line names the
results folder (starting the same sweep again resumes it) and links to the Dask dashboard when
the sweep runs on the server's cluster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
import param
from batscope.training.grid_sweep import GridRun, GridSweepController
from batscope.training.limits import escape
from batscope.widgets.base import PlotView, sweep_buttons
from batscope.widgets.cluster import cluster_toggle, dashboard_html
from batscope.widgets.live import add_colorbar, add_hover, bokeh_pane, feed
from bokeh.models import ColumnDataSource, FactorRange, LinearColorMapper
from bokeh.palettes import Viridis256

COLUMNS = ("seed", "status", "accuracy %", "seconds", "error")


def _label(value) -> str:
    """A swept value as an axis label (floats short: 0.001, 1e-05)."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cells(grid: dict) -> dict:
    """The heatmap's source columns (a NaN accuracy is drawn grey)."""
    return {
        "x": list(grid["x"]),
        "y": list(grid["y"]),
        "accuracy": np.asarray(grid["accuracy"], dtype=float),
        "runs": np.asarray(grid["runs"], dtype=int),
    }


class GridSweepView(PlotView):
    """Controls, heatmap and table of a :class:`GridSweepController`; ``update(batch)`` takes the
    controller's :class:`GridRun` s (other items are ignored)."""

    controller = param.ClassSelector(class_=GridSweepController)

    def __init__(self, controller: GridSweepController, view_config=None, **params):
        super().__init__(view_config=view_config, controller=controller, **params)
        ctrl = self.controller
        self._sweep_id = None
        self._runs: dict[str, GridRun] = {}
        self.heatmap = self._figure()
        self.table = pn.pane.DataFrame(
            pd.DataFrame(columns=list(COLUMNS)),
            index=False,
            escape=True,
            sizing_mode="stretch_width",
            css_classes=["grid-sweep-table"],
        )
        text = dict(width=270, max_length=200)
        inputs = [
            pn.widgets.Select.from_param(ctrl.param.x_field, label="first axis: field", width=270),
            pn.widgets.TextInput.from_param(
                ctrl.param.x_values, label="its values", css_classes=["input-x_values"], **text
            ),
            pn.widgets.Select.from_param(
                ctrl.param.y_field, label="second axis: field (empty: none)", width=270
            ),
            pn.widgets.TextInput.from_param(
                ctrl.param.y_values, label="its values", css_classes=["input-y_values"], **text
            ),
            pn.widgets.TextInput.from_param(
                ctrl.param.seeds, label="seeds (0-4 or 0,3,7)", css_classes=["input-seeds"], **text
            ),
        ]
        start, cancel, self.progress = sweep_buttons(ctrl, "Start sweep", "Cancel sweep")
        self.status = pn.pane.Markdown("", css_classes=["grid-sweep-status"], margin=(0, 5))
        ctrl.param.watch(
            self._on_progress,
            ["status", "runs_done", "runs_total", "elapsed_s", "message", "dashboard_link"],
        )
        self._on_progress()
        about = pn.pane.Markdown(
            "### Sweep the current setup\nEach run trains the network and training set in the "
            "sidebar, on the embedded data, with one value of each axis and one seed, like "
            "`batscope sweep --set FIELD=V1,V2 --seeds …`.",
            width=290,
        )
        self._layout = pn.Row(
            pn.Column(
                about,
                *inputs,
                cluster_toggle(ctrl.cluster),
                pn.Row(start, cancel),
                self.progress,
                self.status,
                width=300,
            ),
            pn.Column(bokeh_pane(self.heatmap), self.table),
        )

    def __panel__(self):
        return self._layout

    def _figure(self):
        """Final accuracy per (x, y) cell on categorical axes, grey until a run of it ends."""
        grid = self._grid(None)
        fig = self.figure(
            "",
            "",
            "",
            360,
            anchor=False,
            x_range=FactorRange(factors=grid["x"]),
            y_range=FactorRange(factors=grid["y"]),
        )
        self.mapper = LinearColorMapper(
            palette=Viridis256, low=0.0, high=100.0, nan_color="lightgrey"
        )
        self.cells_source = ColumnDataSource(_cells(grid))
        cells = fig.rect(
            "x",
            "y",
            width=1,
            height=1,
            source=self.cells_source,
            fill_color={"field": "accuracy", "transform": self.mapper},
            line_color="white",
        )
        fig.xgrid.visible = fig.ygrid.visible = False
        add_colorbar(fig, self.mapper, "final accuracy (%)")
        add_hover(
            fig,
            [cells],
            [("", "@x, @y"), ("final accuracy (%)", "@accuracy{0.0}"), ("runs", "@runs")],
        )
        return fig

    def _draw(self, grid: dict) -> None:
        """Show ``grid`` (see :meth:`_grid`): its cells, axes' categories, title and labels."""
        fig = self.heatmap
        feed(self.cells_source, _cells(grid))
        xs, ys = list(dict.fromkeys(grid["x"])), list(dict.fromkeys(grid["y"]))
        if list(fig.x_range.factors) != xs:
            fig.x_range.factors = xs
        if list(fig.y_range.factors) != ys:
            fig.y_range.factors = ys
        fig.title.text = grid.get("title", "")
        fig.xaxis.axis_label = grid.get("xlabel", "")
        fig.yaxis.axis_label = grid.get("ylabel", "")

    # ---- results ----------------------------------------------------------------------------
    def _grid(self, plan) -> dict:
        """The heatmap's data: every (x, y) cell of ``plan`` with the mean accuracy so far."""
        if plan is None:  # one grey cell: the axes are categorical from the start
            return {"x": ["no sweep yet"], "y": [""], "accuracy": [np.nan], "runs": [0]}
        by_y = len(plan.fields) > 1
        cells: dict[tuple[str, str], list] = {}
        for cell in plan.cells:
            x = _label(cell.values[0][1])
            y = _label(cell.values[1][1]) if by_y else f"seed {cell.seed}"
            cells.setdefault((x, y), [])
            run = self._runs.get(cell.key)
            if run is not None and run.accuracy is not None:
                cells[(x, y)].append(run.accuracy)
        keys = list(cells)
        return {
            "x": [k[0] for k in keys],
            "y": [k[1] for k in keys],
            "accuracy": [float(np.mean(v)) if v else np.nan for v in cells.values()],
            "runs": [len(v) for v in cells.values()],
            "title": "Final accuracy" + (" (mean over seeds)" if by_y else ""),
            "xlabel": plan.fields[0],
            "ylabel": plan.fields[1] if by_y else "seed",
        }

    def _table(self, plan) -> pd.DataFrame:
        rows = []
        for cell in plan.cells:
            run = self._runs.get(cell.key)
            if run is None:
                continue
            rec = run.record
            rows.append(
                {
                    **{f: _label(v) for f, v in cell.values},
                    "seed": cell.seed,
                    "status": rec["status"],
                    "accuracy %": None if run.accuracy is None else round(run.accuracy, 2),
                    "seconds": round(float(rec.get("seconds") or 0.0), 1),
                    "error": str(rec.get("error") or "")[:200],  # the pane escapes HTML
                }
            )
        return pd.DataFrame(rows, columns=[*plan.fields, *COLUMNS])

    def _show(self) -> None:
        plan = self.controller.plan
        self._draw(self._grid(plan))
        self.table.object = self._table(plan) if plan is not None else None

    def update(self, batch: list) -> None:
        """Add the runs of ``batch`` of the current sweep; redraw once."""
        fresh = False
        for item in batch:
            if isinstance(item, GridRun) and item.sweep_id == self.controller.sweep_id:
                self._runs[item.key] = item
                fresh = True
        if fresh:
            self._show()

    def reset(self) -> None:
        self._runs = {}
        self._show()

    def _on_progress(self, *events) -> None:
        c = self.controller
        if c.status in ("queued", "running") and c.sweep_id != self._sweep_id:
            self._sweep_id = c.sweep_id  # a new sweep: its empty grid at once
            self.reset()
        self.progress.max = max(c.runs_total, 1)
        self.progress.value = min(c.runs_done, self.progress.max)
        text = f"**{c.status}** · runs {c.runs_done}/{c.runs_total} · {c.elapsed_s:.1f} s"
        if c.status == "queued":
            text += f" · place {c.queue_position} in the queue for a training slot"
        if c.folder:
            text += f" · results folder {escape(c.folder)}"
        text += dashboard_html(c.dashboard_link)
        if c.message:
            text += f"\n\n{escape(c.message, 600)}"
        self.status.object = text
