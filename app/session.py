"""LiveSession: the pull loop between a controller and the views (app-architecture.md §4–§5).

The only code that calls ``pn.state.add_periodic_callback``, ``pn.io.hold`` and
``pn.state.on_session_destroyed``. The callback ticks at ≥ 4 Hz while a run is active (queued,
running or paused, so that a Step's result and the end of a run are seen) and stops otherwise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import gc
import logging
from functools import partial

import panel as pn
from batscope.training.controller import ACTIVE
from batscope.training.telemetry import Snapshot

log = logging.getLogger(__name__)
PERIOD_MS = 250  # 4 Hz
_HEAVY = {
    "activity": (),
    "errors": (),
    "membrane": None,
    "sparsity": (),
    "latency": None,
    "weights": None,
}


RELEASE_DELAY_S = 2.0  # after a session is destroyed, once Bokeh has let go of its document


def _malloc_trim():
    """glibc's ``malloc_trim`` (hands freed heap pages back to the system), or None."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()
_release_pending = False


def release_memory() -> None:
    """Collect the closed sessions' object cycles and return the freed heap to the system.

    A session's views, documents and models are freed by Python, but glibc keeps the pages for
    reuse: after a room's sessions closed, the server stayed 100+ MB above its baseline.
    ``batscope serve`` has Python allocate its small objects with glibc's malloc as well
    (``cli.serve_env``), so that their freed pages are handed back here too.
    """
    global _release_pending
    _release_pending = False
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)


def _schedule_release() -> None:
    """Run :func:`release_memory` once, shortly after the last of a burst of closings."""
    global _release_pending
    if _release_pending:
        return
    from tornado.ioloop import IOLoop

    _release_pending = True
    IOLoop.current().call_later(RELEASE_DELAY_S, release_memory)


def _light(snap):
    """A snapshot reduced to its light part (its metric rows), for coalescing."""
    return dataclasses.replace(snap, **_HEAVY) if isinstance(snap, Snapshot) else snap


def _carry(older, newer):
    """``newer`` with the heavy fields it lacks taken from ``older`` (heavy parts come at
    different rates: sparsity and weights about once a second)."""
    if not (isinstance(older, Snapshot) and isinstance(newer, Snapshot)):
        return newer
    missing = {
        k: getattr(older, k)
        for k, empty in _HEAVY.items()
        if getattr(newer, k) == empty and getattr(older, k) != empty
    }
    return dataclasses.replace(newer, **missing) if missing else newer


class ViewGate:
    """Holds a hidden view's updates until it is shown (a tab not active, or never shown yet).

    Updating views nobody sees costs the training GIL time for nothing, and a tab never shown
    need not be built at all: ``view()`` returns the view, building it on its first call, and
    is only called when ``visible()`` is true. While hidden, batches are kept — metric rows
    and other items all, the heavy parts of snapshots only for the newest — and a reset is
    remembered; :meth:`flush` hands them over when shown.
    """

    def __init__(self, view, visible):
        self._view, self._visible = view, visible
        self._pending: list = []
        self._stale = False  # a reset not yet applied to the view

    def update(self, batch: list) -> None:
        for item in batch:
            if self._pending:
                last = self._pending[-1]
                item = _carry(last, item)
                self._pending[-1] = _light(last)
            self._pending.append(item)
        if self._visible():
            self.flush()

    def flush(self) -> None:
        if self._stale:
            self._stale = False
            self._view().reset()
        if self._pending:
            pending, self._pending = self._pending, []
            self._view().update(pending)

    def reset(self) -> None:
        self._pending, self._stale = [], True
        if self._visible():
            self.flush()


class LiveSession:
    """Drains every controller's ``poll()`` into its views' ``update(batch)`` once per tick.

    ``feeds`` pairs each pollable controller (``poll() -> list``, ``status``, ``shutdown()``;
    the training controller, the convergence sweep, ...) with the views it feeds. A controller
    with a ``generation`` param clears its views (``reset()``) when it changes.
    """

    def __init__(self, feeds, period_ms: int = PERIOD_MS):
        self._feeds = [(ctrl, list(views)) for ctrl, views in feeds]
        self.ticks = 0
        self._cb = pn.state.add_periodic_callback(self._tick, period=period_ms, start=False)
        for ctrl, views in self._feeds:
            ctrl.param.watch(self._on_status, "status")
            if "generation" in ctrl.param:
                ctrl.param.watch(partial(self._on_generation, views), "generation")
        if pn.state.curdoc is not None:
            pn.state.on_session_destroyed(self._on_destroyed)

    def _active(self) -> bool:
        return any(ctrl.status in ACTIVE for ctrl, _ in self._feeds)

    def _tick(self) -> None:
        """One pull: drain the outboxes, then update the views in one websocket message."""
        self.ticks += 1
        pending = [(views, ctrl.poll()) for ctrl, views in self._feeds]
        pending = [(views, batch) for views, batch in pending if batch]
        if pending:
            with pn.io.hold():
                for views, batch in pending:
                    for view in views:
                        try:
                            view.update(batch)
                        except Exception:  # one broken view must not stop the others or the run
                            log.exception("view %s failed to update", type(view).__name__)
        if not self._active() and self._cb.running:
            self._cb.stop()

    def _on_status(self, event) -> None:
        if event.new in ACTIVE and not self._cb.running:
            self._cb.start()

    def _on_generation(self, views, event) -> None:
        for view in views:
            view.reset()

    def _on_destroyed(self, session_context) -> None:
        if self._cb.running:
            self._cb.stop()
        for ctrl, _ in self._feeds:
            ctrl.shutdown()
        if session_context is not None:
            _schedule_release()

    @property
    def running(self) -> bool:
        return self._cb.running
