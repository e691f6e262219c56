"""The prediction scatter: a task's samples in their plane, coloured by the network's prediction.

For a task whose samples are points of a plane (Yin-Yang: x, y of the symbol), the trainer's
heavy snapshots carry a :class:`~batscope.training.telemetry.PredictionMap`: the displayed (test)
samples' coordinates, labels and the current network's predictions. Each point is filled with the
colour of its predicted class and outlined in black where the prediction is wrong, so the symbol's
shape emerges as the network learns. Rendering only; the data comes from the controller's
snapshots (``extra["prediction_map"]``).
"""

from __future__ import annotations

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource
from bokeh.palettes import Category10_10

from .base import PlotView
from .live import LiveText, add_hover, bokeh_pane, feed, show

EMPTY_TEXT = (
    "No prediction map: it is drawn for tasks whose samples are points of a plane (Yin-Yang), "
    "from the network's predictions during training."
)
WRONG = "black"  # outline of a misclassified point
COLOR_NAMES = ("blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan")
COLUMNS = ("x", "y", "label", "prediction", "fill", "outline")


def _empty() -> dict:
    return {c: np.zeros(0) if c in ("x", "y") else np.zeros(0, dtype=object) for c in COLUMNS}


class PredictionMapView(PlotView):
    """The displayed samples as a scatter coloured by the prediction (see module docstring)."""

    def __init__(self, view_config=None, **params):
        super().__init__(view_config, **params)
        self.step = -1  # the step of the map on show
        self.source = ColumnDataSource(_empty())
        self.fig = self.figure("prediction at each test point", "x", "y", height=380)
        self.fig.match_aspect = True
        self.fig.css_classes = ["prediction-map"]
        points = self.fig.scatter(
            "x",
            "y",
            source=self.source,
            size=6,
            fill_color="fill",
            line_color="outline",
            line_width=1.2,
        )
        add_hover(
            fig=self.fig,
            renderers=[points],
            tooltips=[("label", "@label"), ("prediction", "@prediction")],
        )
        self.info = LiveText(EMPTY_TEXT)
        self.pane = bokeh_pane(self.fig)
        show(self.pane, False)  # until a map is drawn: most tasks never have one
        self._layout = pn.Column(self.info, self.pane, sizing_mode="stretch_width")

    def update(self, batch) -> None:
        """Draw the newest prediction map of ``batch`` (from the heavy snapshots)."""
        for snap in reversed(batch):
            pm = snap.extra.get("prediction_map")
            if pm is not None:
                if pm.step != self.step:
                    self._draw(pm)
                return

    def _draw(self, pm) -> None:
        names, palette = np.asarray(pm.class_names), np.asarray(Category10_10)
        pred, label = np.asarray(pm.predictions), np.asarray(pm.labels)
        wrong = pred != label
        feed(
            self.source,
            {
                "x": np.asarray(pm.xy[:, 0], float),
                "y": np.asarray(pm.xy[:, 1], float),
                "label": names[label].astype(object),
                "prediction": names[pred].astype(object),
                "fill": palette[pred % len(palette)].astype(object),
                "outline": np.where(wrong, WRONG, "white").astype(object),
            },
        )
        self.step = pm.step
        legend = ", ".join(f"{n} {c}" for n, c in zip(names, COLOR_NAMES, strict=False))
        self.info.object = (
            f"**step {pm.step}**: {100 * (1 - wrong.mean()):.1f} % of these {len(pred)} test "
            f"points predicted right; fill = predicted class ({legend}), black outline = wrong."
        )
        show(self.pane, True)

    def reset(self) -> None:
        """Back to the empty state (a new run or a Reset)."""
        self.step = -1
        feed(self.source, _empty())
        self.info.object = EMPTY_TEXT
        show(self.pane, False)

    def __panel__(self):
        return self._layout
