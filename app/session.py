"""LiveSession: the pull loop between a controller and the views (app-architecture.md §4–§5).

The only code that calls ``pn.state.add_periodic_callback``, ``pn.io.hold`` and
``pn.state.on_session_destroyed``. The callback ticks at ≥ 4 Hz while a run is active (queued,
running or paused, so that a Step's result and the end of a run are seen) and stops otherwise.
"""

from __future__ import annotations

import logging

import panel as pn

from .controller import ACTIVE

log = logging.getLogger(__name__)
PERIOD_MS = 200


class LiveSession:
    """Drains ``controller.poll()`` into every view's ``update(batch)`` once per tick.

    ``controllers`` are extra pollable objects (``poll() -> None``, ``shutdown()``), e.g. the
    convergence sweep, that share the tick and the session's lifetime.
    """

    def __init__(self, controller, views, period_ms: int = PERIOD_MS, controllers=()):
        self._ctrl = controller
        self._views = list(views)
        self._others = list(controllers)
        self.ticks = 0
        self._cb = pn.state.add_periodic_callback(self._tick, period=period_ms, start=False)
        controller.param.watch(self._on_status, "status")
        controller.param.watch(self._on_generation, "generation")
        for other in self._others:
            if "status" in other.param:
                other.param.watch(self._on_status, "status")
        if pn.state.curdoc is not None:
            pn.state.on_session_destroyed(self._on_destroyed)

    def _active(self) -> bool:
        return any(getattr(c, "status", "idle") in ACTIVE for c in (self._ctrl, *self._others))

    def _tick(self) -> None:
        """One pull: drain the outboxes, then update every view in one websocket message."""
        self.ticks += 1
        batch = self._ctrl.poll()
        for other in self._others:
            other.poll()
        if batch:
            with pn.io.hold():
                for view in self._views:
                    try:
                        view.update(batch)
                    except Exception:  # one broken view must not stop the others or the run
                        log.exception("view %s failed to update", type(view).__name__)
        if not self._active() and self._cb.running:
            self._cb.stop()

    def _on_status(self, event) -> None:
        if event.new in ACTIVE and not self._cb.running:
            self._cb.start()

    def _on_generation(self, event) -> None:
        with pn.io.hold():
            for view in self._views:
                view.reset()

    def _on_destroyed(self, session_context) -> None:
        if self._cb.running:
            self._cb.stop()
        self._ctrl.shutdown()
        for other in self._others:
            other.shutdown()

    @property
    def running(self) -> bool:
        return self._cb.running
