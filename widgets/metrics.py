"""Loss and accuracy curves (train / val / test) fed by ``hv.streams.Buffer`` s.

Rows are shaped here once per tick and appended; the curves are DynamicMaps built once on the
buffers' own data, so Bokeh streams only the new points (app-architecture.md §6).
"""

from __future__ import annotations

from functools import partial

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from .base import PlotView
from .errorflow import StyledOverlay

SPLITS = ("train", "val", "test")
COLORS = {"train": "#1f77b4", "val": "#ff7f0e", "test": "#2ca02c"}
HISTORY = 100_000


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": np.array([], dtype=np.int64),
            "loss": np.array([], float),
            "accuracy": np.array([], float),
        }
    )


def _curve(split: str, metric: str, **frames):
    """The curve of one split, built directly on its buffer's frame (Bokeh streams new rows)."""
    return hv.Curve(frames[split], kdims="step", vdims=metric, label=split)


class MetricsView(PlotView):
    """Two plots (loss, accuracy %) with one curve per split; every row is kept."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        # the buffers' contents are named by split, so that one DynamicMap can take all three
        self.buffers = {
            s: hv.streams.Buffer(_empty(), length=HISTORY, index=False, rename={"data": s})
            for s in SPLITS
        }
        opts = dict(
            responsive=True,
            height=260,
            show_grid=True,
            framewise=True,
            tools=["hover"],
            hooks=self.hooks,
            legend_position="top_right",
        )
        empty = {s: _empty() for s in SPLITS}

        def plot(metric, title, ylabel):
            layers = [
                (
                    partial(_curve, split=s, metric=metric),
                    dict(color=COLORS[s], line_width=2 if s == "train" else 3),
                )
                for s in SPLITS
            ]
            overlay = StyledOverlay(layers, empty, title=title, ylabel=ylabel, **opts)
            return hv.DynamicMap(overlay, streams=list(self.buffers.values()))

        self.loss = plot("loss", "Loss (mean over the batch)", "loss")
        self.accuracy = plot("accuracy", "Accuracy [%]", "accuracy [%]")
        self._layout = pn.Column(
            pn.pane.HoloViews(self.loss, linked_axes=False),
            pn.pane.HoloViews(self.accuracy, linked_axes=False),
            sizing_mode="stretch_width",
        )

    def update(self, batch: list) -> None:
        """Append every row of ``batch``; both plots redraw once, whichever splits got rows."""
        rows = [r for snap in batch for r in snap.rows]
        changed = []
        for split in SPLITS:
            sel = [r for r in rows if r.split == split]
            if sel:
                buffer = self.buffers[split]
                buffer.update(  # appends without redrawing (Buffer.send would redraw per split)
                    data=pd.DataFrame(
                        {
                            "step": np.array([r.step for r in sel], dtype=np.int64),
                            "loss": np.array([r.loss for r in sel], dtype=float),
                            "accuracy": 100.0 * np.array([r.accuracy for r in sel], dtype=float),
                        }
                    )
                )
                changed.append(buffer)
        if changed:
            hv.streams.Stream.trigger(changed)

    def reset(self) -> None:
        for buf in self.buffers.values():
            buf.clear()

    def __panel__(self):
        return self._layout
