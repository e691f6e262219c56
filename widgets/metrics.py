"""Loss and accuracy curves (train / val / test), one Bokeh source per split.

Every row is kept here; a line shows at most ``MAX_POINTS`` points, each the mean of ``stride``
consecutive rows (stride 1, 2, 4, …: it doubles when the line would exceed the cap, and the line
is then recomputed once). New points are appended with ``ColumnDataSource.stream``, so only they
travel to the browser (app-architecture.md §6; the live figures are described in
widgets/live.py). Without the cap a toy task at 1,000+ steps/s sends the browser 10⁵-point lines
to redraw four times a second.
"""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource

from .base import PlotView
from .live import add_hover, bokeh_pane, feed

SPLITS = ("train", "val", "test")
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
MAX_POINTS = 2_000  # per line


def _empty() -> dict:
    return {
        "step": np.zeros(0, np.int64),
        "loss": np.zeros(0),
        "accuracy": np.zeros(0),
        "n": np.zeros(0, np.int64),
    }


class Series:
    """All rows of one split, and the points shown: means over buckets of ``stride`` rows."""

    def __init__(self, max_points: int = MAX_POINTS):
        self.max_points = max_points
        self.stride, self.shown, self.size = 1, 0, 0  # shown: full buckets already sent
        self._cols = {k: np.zeros(1024, v.dtype) for k, v in _empty().items() if k != "n"}

    def extend(self, step, loss, accuracy) -> None:
        n = self.size + len(step)
        if n > len(self._cols["step"]):
            for k, v in self._cols.items():
                self._cols[k] = np.resize(v, max(n, 2 * len(v)))
        for k, v in (("step", step), ("loss", loss), ("accuracy", accuracy)):
            self._cols[k][self.size : n] = v
        self.size = n

    def _points(self, first: int, last: int) -> dict:
        """Buckets ``first`` .. ``last`` - 1: each point at its bucket's last step."""
        lo, hi, w = first * self.stride, last * self.stride, self.stride
        return {
            "step": self._cols["step"][lo + w - 1 : hi : w].copy(),
            "loss": self._cols["loss"][lo:hi].reshape(-1, w).mean(axis=1),
            "accuracy": self._cols["accuracy"][lo:hi].reshape(-1, w).mean(axis=1),
            "n": np.full(last - first, w, np.int64),
        }

    def take(self) -> tuple[str, dict] | None:
        """What the line needs now: ``("stream", new points)``, ``("replace", all points)``
        after the stride doubled, or None when no bucket was completed."""
        full = self.size // self.stride
        if full <= self.shown:
            return None
        if full <= self.max_points:
            first, self.shown = self.shown, full
            return "stream", self._points(first, full)
        while self.size // self.stride > self.max_points:
            self.stride *= 2
        self.shown = self.size // self.stride
        return "replace", self._points(0, self.shown)


class MetricsView(PlotView):
    """Two plots (loss, accuracy %) with one line per split; every row is kept (``series``)."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self._last = None  # the newest snapshot whose rows were appended
        self.sources = {s: ColumnDataSource(_empty()) for s in SPLITS}
        self.series = {s: Series() for s in SPLITS}
        # each legend where its curves are not: the loss falls, the accuracy rises
        self.loss = self._plot(
            "loss", "Loss (mean over the batch)", "loss", "{0.0000}", "top_right"
        )
        self.accuracy = self._plot(
            "accuracy", "Accuracy [%]", "accuracy [%]", "{0.0}", "bottom_right"
        )
        self._layout = pn.Column(
            bokeh_pane(self.loss), bokeh_pane(self.accuracy), sizing_mode="stretch_width"
        )

    def _plot(self, metric: str, title: str, y_label: str, fmt: str, legend_at: str):
        fig = self.figure(title, "step", y_label, height=260)
        lines = [
            fig.line(
                "step",
                metric,
                source=self.sources[s],
                color=COLORS[s],
                line_width=2 if s == "train" else 3,
                legend_label=s,
                name=s,
            )
            for s in SPLITS
        ]
        tips = [("split", "$name"), ("step", "@step"), (y_label, f"@{metric}{fmt}")]
        add_hover(fig, lines, [*tips, ("mean of rows", "@n")])
        fig.legend.location = legend_at
        fig.legend.click_policy = "hide"
        for item in fig.legend.items:  # a split is listed once it has rows (many tasks have
            item.visible = False  # no validation split, the toy tasks no test split)
        return fig

    def _list(self, split: str, on: bool) -> None:
        """Show or hide ``split`` in both legends."""
        for fig in (self.loss, self.accuracy):
            for item in fig.legend.items:
                if item.label.value == split and item.visible != on:
                    item.visible = on

    def update(self, batch: list) -> None:
        """Append every row of ``batch`` that was not appended yet (a snapshot given twice)."""
        rows = [r for snap in batch if snap is not self._last for r in snap.rows]
        if batch:
            self._last = batch[-1]
        for split in SPLITS:
            sel = [r for r in rows if r.split == split]
            if not sel:
                continue
            series = self.series[split]
            series.extend(
                np.array([r.step for r in sel], dtype=np.int64),
                np.array([r.loss for r in sel], dtype=float),
                100.0 * np.array([r.accuracy for r in sel], dtype=float),
            )
            change = series.take()
            if change is None:
                continue
            how, points = change
            if how == "stream":
                self.sources[split].stream(points)
            else:
                self.sources[split].data = points
            self._list(split, True)

    def reset(self) -> None:
        self._last = None
        self.series = {s: Series() for s in SPLITS}
        for split, source in self.sources.items():
            feed(source, _empty())
            self._list(split, False)

    def __panel__(self):
        return self._layout
