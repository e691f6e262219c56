"""Training slots: a fair, process-global cap on concurrent trainings (no Panel here).

:class:`SlotPool` hands out ``capacity`` slots first come, first served to :class:`SlotTicket` s;
a ticket knows its place in the queue. ``TRAINING_SLOTS`` is the pool every training run and
convergence sweep of the process shares (``BATSCOPE_MAX_TRAININGS``, default 4).
``BATSCOPE_SLOT_GRACE_S`` (default 10 s) is how long a paused run keeps its slot
(``training.run.TrainingRun``).
"""

from __future__ import annotations

import os
import threading
from collections import deque

DEFAULT_MAX_TRAININGS = 4
DEFAULT_SLOT_GRACE_S = 10.0


def _max_trainings() -> int:
    value = os.environ.get("BATSCOPE_MAX_TRAININGS", str(DEFAULT_MAX_TRAININGS))
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"BATSCOPE_MAX_TRAININGS must be an integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"BATSCOPE_MAX_TRAININGS must be >= 1, got {n}")
    return n


def slot_grace_s() -> float:
    """Seconds a paused run keeps its slot (``BATSCOPE_SLOT_GRACE_S``, default 10)."""
    value = os.environ.get("BATSCOPE_SLOT_GRACE_S", str(DEFAULT_SLOT_GRACE_S))
    try:
        grace = float(value)
    except ValueError:
        raise ValueError(f"BATSCOPE_SLOT_GRACE_S must be a number, got {value!r}") from None
    if not 0 <= grace <= 3600:
        raise ValueError(f"BATSCOPE_SLOT_GRACE_S must be between 0 and 3600 s, got {grace}")
    return grace


class SlotTicket:
    """One place in a :class:`SlotPool`: queued, then holding a slot, until :meth:`leave`."""

    def __init__(self, pool: SlotPool):
        self._pool = pool
        self._holding = False
        self._left = False

    @property
    def holding(self) -> bool:
        return self._holding

    @property
    def position(self) -> int:
        """1 for the next in the queue, 2 for the one after, …; 0 when not queued."""
        return self._pool._position(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the slot; True once it is held."""
        with self._pool._cond:
            self._pool._cond.wait_for(lambda: self._holding or self._left, timeout)
            return self._holding

    def leave(self) -> None:
        """Give the slot back, or leave the queue. Idempotent."""
        self._pool._leave(self)


class SlotPool:
    """``capacity`` slots handed out first come, first served to :class:`SlotTicket` s.

    A freed slot goes straight to the head of the queue. ``acquire`` / ``release`` keep the
    ``threading.Semaphore`` interface for a caller that only needs an anonymous slot.
    """

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"a slot pool needs at least 1 slot, got {capacity}")
        self.capacity = capacity
        self._free = capacity
        self._queue: deque[SlotTicket] = deque()
        self._cond = threading.Condition()

    @property
    def free(self) -> int:
        return self._free

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def ticket(self) -> SlotTicket:
        """Join the queue; the ticket holds a slot at once if one is free and nobody waits."""
        t = SlotTicket(self)
        with self._cond:
            self._queue.append(t)
            self._grant()
        return t

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """An anonymous slot (give it back with :meth:`release`); never jumps the queue."""
        if not blocking:
            with self._cond:
                if self._free and not self._queue:
                    self._free -= 1
                    return True
                return False
        t = self.ticket()
        with self._cond:
            if self._cond.wait_for(lambda: t._holding, timeout):
                t._holding, t._left = False, True  # the slot now belongs to the caller
                return True
        t.leave()
        return False

    def release(self) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        with self._cond:
            if self._free >= self.capacity:
                raise ValueError("SlotPool released more often than acquired")
            self._free += 1
            self._grant()

    def _grant(self) -> None:  # caller holds the lock
        while self._free and self._queue:
            self._queue.popleft()._holding = True
            self._free -= 1
        self._cond.notify_all()

    def _leave(self, t: SlotTicket) -> None:
        with self._cond:
            if t._holding:
                t._holding = False
                self._free += 1
            elif not t._left:
                self._queue.remove(t)
            t._left = True
            self._grant()

    def _position(self, t: SlotTicket) -> int:
        with self._cond:
            if t._holding or t._left:
                return 0
            return self._queue.index(t) + 1


TRAINING_SLOTS = SlotPool(_max_trainings())
