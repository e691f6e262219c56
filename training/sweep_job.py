"""One started sweep's lifecycle, shared by the convergence sweep (``training.sweep``) and the
Sweeps tab (``training.grid_sweep``): its worker thread, stop flag, training-slot ticket and
memory reservation.

A new sweep never waits on the session's loop: the old one is told to stop, and the new worker
first waits for it to end (:meth:`SweepJob.wait_turn`), then queues for a slot. The worker gives
back the slot and the reservation when it ends, however it ends (:meth:`SweepJob.release`), so a
chunk that outlasts any timeout cannot leak either.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from batscope.engine.slots import TRAINING_SLOTS, SlotTicket

from .priority import lower_thread_priority
from .resources import Reservation

POLL_S = 0.05  # how often a waiting worker looks at its stop flag


class SweepJob:
    """One started sweep: its worker, stop flag, slot ticket and memory reservation."""

    def __init__(self, sweep_id: int, settings, reservation: Reservation, after):
        self.sweep_id, self.settings, self.reservation = sweep_id, settings, reservation
        self.runner: Callable | None = None  # the Fig. 3 runner chosen at start (None: in process)
        self.after: SweepJob | None = after  # a sweep being stopped: wait for it to end
        self.stop = threading.Event()
        self.done = threading.Event()
        self.ticket: SlotTicket | None = None
        self.thread: threading.Thread | None = None

    def queue(self) -> None:
        """Take a place in the queue for a training slot now, unless it must first wait for
        the sweep it replaces (its worker queues then)."""
        if self.after is None:
            self.ticket = TRAINING_SLOTS.ticket()

    @property
    def holding(self) -> bool:
        """It holds a training slot now (it starts "running" rather than "queued")."""
        return self.ticket is not None and self.ticket.holding

    @property
    def position(self) -> int:
        """Its place in the queue for a training slot (0: not queued)."""
        return self.ticket.position if self.ticket is not None else 0

    def _work(self, target: Callable[[SweepJob], None]) -> None:
        lower_thread_priority()  # the server's pages go first (training/priority.py)
        target(self)

    def start(self, target: Callable[[SweepJob], None], name: str) -> None:
        """Run ``target(self)`` on a daemon thread; if no thread starts, give everything back."""
        self.thread = threading.Thread(target=self._work, args=(target,), daemon=True, name=name)
        try:
            self.thread.start()
        except BaseException:  # no worker: nobody else would give the slot back
            self.release()
            self.done.set()
            raise

    def wait_turn(self) -> bool:
        """(Worker) Wait for the sweep this one replaces to end, then for a training slot;
        False if it was stopped meanwhile."""
        while self.after is not None and not self.after.done.wait(POLL_S):
            if self.stop.is_set():
                break
        self.after = None  # the old sweep may be freed
        if self.ticket is None and not self.stop.is_set():
            self.ticket = TRAINING_SLOTS.ticket()
        while self.ticket is not None and not self.ticket.wait(POLL_S):
            if self.stop.is_set():
                break
        return not self.stop.is_set()

    def release(self) -> None:
        """Give back the slot and the memory; idempotent."""
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            ticket.leave()
        self.reservation.release()

    def stop_and_join(self, timeout: float) -> bool:
        """Tell the worker to stop and wait up to ``timeout`` s for it; True if it has ended
        (it gives back its slot and memory when its chunk ends even if this times out)."""
        self.stop.set()
        t = self.thread
        if t is not None and t.is_alive() and t is not threading.current_thread():
            t.join(timeout)
        return not self.alive

    @property
    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()
