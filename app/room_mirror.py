"""A read-only copy of one participant's run for the projector (the instructor's page).

The copy has views of its own (status line, loss and accuracy curves, raster) in the
instructor's document, fed once per instructor tick from what the participant's controller
already kept on their session's loop: ``history`` (every metric row) and ``last`` (the newest
snapshot). It never calls the controller's ``poll()`` (that would take the participant's
updates) and holds nothing that writes to the participant: its raster's layer buttons and clicks
change the copy's own :class:`ViewConfig`.
"""

from __future__ import annotations

import dataclasses

import panel as pn
from batscope.training.state import ViewConfig
from batscope.widgets.controls import STATUS_FIELDS, status_text
from batscope.widgets.live import LiveText
from batscope.widgets.metrics import MetricsView
from batscope.widgets.raster import RasterView

NOBODY = "Nobody shown: choose a participant."


class ParticipantMirror(pn.viewable.Viewer):
    """Shows the participant given to :meth:`follow`, refreshed by :meth:`refresh`."""

    def __init__(self, **params):
        super().__init__(**params)
        self.view_config = ViewConfig()
        self.metrics = MetricsView(self.view_config)
        self.raster = RasterView(self.view_config)
        self.status = LiveText(NOBODY, css_classes=["mirror-status"])
        self.member = None
        self._seen = 0  # rows of the participant's history already shown
        self._generation = -1
        self._last = None  # the participant's newest snapshot already shown
        self._layout = pn.Column(
            self.status, self.metrics, self.raster, sizing_mode="stretch_width"
        )

    def follow(self, member) -> None:
        """Show ``member`` (a :class:`~batscope.app.room.Member`, or None) from now on."""
        self.member = member
        self._clear()
        if member is None:
            self.status.object = NOBODY
        else:
            self.refresh()

    def _clear(self) -> None:
        self._seen, self._last = 0, None
        self.metrics.reset()
        self.raster.reset()

    def refresh(self) -> None:
        """Bring the copy up to the participant's state now (call on the instructor's tick)."""
        if self.member is None:
            return
        c = self.member.controller
        if c.generation != self._generation or len(c.history) < self._seen:
            self._generation = c.generation  # a Reset or a new run: curves start afresh
            self._clear()
        rows = c.history[self._seen :]
        self._seen += len(rows)
        snap = c.last
        if snap is not None and (rows or snap is not self._last):
            batch = [dataclasses.replace(snap, rows=tuple(rows))]
            self.metrics.update(batch)
            self.raster.update(batch)
        self._last = snap
        line = status_text(*(getattr(c, name) for name in STATUS_FIELDS))
        self.status.object = f"**{self.member.name}** | {line}"

    def __panel__(self):
        return self._layout
