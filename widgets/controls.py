"""Play / Pause / Step / Stop / Reset, the progress bar and the run-status line."""

from __future__ import annotations

import math

import panel as pn
from batscope.training.controller import TrainingController

from .live import LiveText


def _eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def status_text(
    status, epoch, epochs, batch, n_batches, steps, eta_s, accuracy, loss, message
) -> str:
    """One line a person (and a browser test) can read: ``status: running | epoch 3/50 | …``."""
    line = (
        f"status: {status} | epoch {epoch}/{epochs} | batch {batch}/{n_batches} | "
        f"step {steps} | remaining {_eta(eta_s)}"
    )
    if math.isfinite(accuracy):
        line += f" | train acc {100 * accuracy:.1f} % | loss {loss:.4g}"
    return line + (f"\n\n{message}" if message else "")


STATUS_FIELDS = (
    "status",
    "epoch",
    "epochs",
    "batch",
    "n_batches",
    "steps",
    "eta_s",
    "accuracy",
    "loss",
    "message",
)


class ControlsView(pn.viewable.Viewer):
    """Buttons generated from the controller's Events; disabled where they make no sense."""

    def __init__(self, controller: TrainingController, **params):
        super().__init__(**params)
        c = self.controller = controller
        st = c.param.status
        self.play = pn.widgets.Button.from_param(
            c.param.start,
            label="▶ Play",
            color="success",
            width=80,
            disabled=pn.bind(lambda s: s in ("running", "queued"), st),
        )
        self.pause = pn.widgets.Button.from_param(
            c.param.pause,
            label="❚❚ Pause",
            color="warning",
            width=80,
            disabled=pn.bind(lambda s: s not in ("running", "queued"), st),
        )
        self.step = pn.widgets.Button.from_param(
            c.param.step,
            label="Step ›",
            color="primary",
            width=80,
            description="Train exactly one batch (one full-batch epoch on a toy task), then pause",
        )
        self.stop = pn.widgets.Button.from_param(
            c.param.stop,
            label="■ Stop",
            color="default",
            width=80,
            disabled=pn.bind(lambda s: s not in ("running", "queued", "paused"), st),
        )
        self.reset = pn.widgets.Button.from_param(
            c.param.reset,
            label="↺ Reset",
            color="danger",
            variant="outline",
            width=80,
            description="Stop, re-initialise the weights from the seed and clear every view",
        )
        self.progress = pn.indicators.Progress(
            value=pn.bind(lambda p: int(round(100 * p)), c.param.progress),
            max=100,
            sizing_mode="stretch_width",
            bar_color="success",
            height=14,
        )
        self.status = LiveText(css_classes=["run-status"], margin=(0, 5))
        c.param.watch(self._show_status, list(STATUS_FIELDS))
        self._show_status()
        self._layout = pn.Column(
            pn.Row(self.play, self.pause, self.step, sizing_mode="stretch_width"),
            pn.Row(self.stop, self.reset),
            self.progress,
            self.status,
            sizing_mode="stretch_width",
        )

    def _show_status(self, *_):
        """The status line, set once per batch of controller changes (a tick's ``poll``)."""
        c = self.controller
        self.status.object = status_text(*(getattr(c, name) for name in STATUS_FIELDS))

    def __panel__(self):
        return self._layout
