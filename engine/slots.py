"""Training slots: a fair, process-global cap on concurrent trainings (no Panel here).

:class:`SlotPool` hands out ``capacity`` slots first come, first served to :class:`SlotTicket` s;
a ticket knows its place in the queue. ``TRAINING_SLOTS`` is the pool every training run and
convergence sweep of the process shares (``BATSCOPE_MAX_TRAININGS``, default 4).
``BATSCOPE_SLOT_GRACE_S`` (default 10 s) is how long a paused run keeps its slot
(``training.run.TrainingRun``). With ``BATSCOPE_SHARED_DIR`` (``batscope serve --workers``) the
slots are lock files shared by all the server's processes (``engine/process_locks.py``): each
process keeps its queue, and the queues form one line in order of arrival.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque

from .process_locks import SlotFiles, shared_dir

DEFAULT_MAX_TRAININGS = 4
DEFAULT_SLOT_GRACE_S = 10.0
SHARED_POLL_S = 0.1  # how often a queue looks for a slot given back by another process


def max_trainings(environ=None) -> int:
    """``BATSCOPE_MAX_TRAININGS`` of ``environ`` (default: this process's), default 4."""
    environ = os.environ if environ is None else environ
    value = environ.get("BATSCOPE_MAX_TRAININGS", str(DEFAULT_MAX_TRAININGS))
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
        self._slot: int | None = None  # the slot file held, when the slots are shared
        self.since = time.monotonic_ns()  # its place in the line of all the server's processes

    @property
    def holding(self) -> bool:
        return self._holding

    @property
    def position(self) -> int:
        """1 for the next in the queue, 2 for the one after, …; 0 when not queued."""
        return self._pool._position(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the slot; True once it is held."""
        pool = self._pool
        if pool._files is None:
            with pool._cond:
                pool._cond.wait_for(lambda: self._holding or self._left, timeout)
                return self._holding
        end = None if timeout is None else time.monotonic() + timeout
        with pool._cond:
            while True:
                if pool._queue and pool._queue[0] is self:
                    pool._grant()  # the head looks for a slot another process gave back
                if self._holding or self._left:
                    return self._holding
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                pool._cond.wait(SHARED_POLL_S if left is None else min(SHARED_POLL_S, left))

    def leave(self) -> None:
        """Give the slot back, or leave the queue. Idempotent."""
        self._pool._leave(self)


class SlotPool:
    """``capacity`` slots handed out first come, first served to :class:`SlotTicket` s.

    A freed slot goes straight to the head of the queue. ``acquire`` / ``release`` keep the
    ``threading.Semaphore`` interface for a caller that only needs an anonymous slot.
    ``files`` shares the slots with other processes (:class:`SlotFiles`).
    """

    def __init__(self, capacity: int, files: SlotFiles | None = None):
        if capacity < 1:
            raise ValueError(f"a slot pool needs at least 1 slot, got {capacity}")
        self.capacity = capacity
        self._files = files
        self._free = capacity  # without files
        self._anonymous: list[int | None] = []  # slots taken by acquire()
        self._published: int | None = None  # the first waiting run's ``since``, as shared
        self._queue: deque[SlotTicket] = deque()
        self._cond = threading.Condition()

    @property
    def free(self) -> int:
        return self._free if self._files is None else self._files.free()

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
                if self._queue or not self._first_in_line(time.monotonic_ns()):
                    return False
                taken, slot = self._take()
                if taken:
                    self._anonymous.append(slot)
                return taken
        t = self.ticket()
        if t.wait(timeout):
            with self._cond:
                if t._holding:
                    t._holding, t._left = False, True  # the slot now belongs to the caller
                    self._anonymous.append(t._slot)
                    return True
        t.leave()
        return False

    def release(self) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        with self._cond:
            if not self._anonymous:
                raise ValueError("SlotPool released more often than acquired")
            self._give(self._anonymous.pop())
            self._grant()

    def _take(self) -> tuple[bool, int | None]:  # caller holds the lock
        if self._files is None:
            if not self._free:
                return False, None
            self._free -= 1
            return True, None
        slot = self._files.take()
        return slot is not None, slot

    def _give(self, slot: int | None) -> None:  # caller holds the lock
        if self._files is None:
            self._free += 1
        else:
            self._files.give(slot)

    def _first_in_line(self, since: int) -> bool:  # caller holds the lock
        return self._files is None or self._files.first_in_line(since)

    def _grant(self) -> None:  # caller holds the lock; wakes the waiters only for a grant
        granted = False
        while self._queue and self._first_in_line(self._queue[0].since):
            taken, slot = self._take()
            if not taken:
                break
            t = self._queue.popleft()
            t._holding, t._slot = True, slot
            granted = True
        if self._files is not None:
            head = self._queue[0].since if self._queue else None
            if head != self._published:
                self._files.publish_head(head)
                self._published = head
        if granted:
            self._cond.notify_all()

    def _leave(self, t: SlotTicket) -> None:
        with self._cond:
            if t._holding:
                t._holding = False
                self._give(t._slot)
                t._slot = None
            elif not t._left:
                self._queue.remove(t)
            t._left = True
            self._grant()
            self._cond.notify_all()  # its own waiters, and a new head of the queue

    def _position(self, t: SlotTicket) -> int:
        with self._cond:
            if t._holding or t._left:
                return 0
            return self._queue.index(t) + 1


def training_slots(environ=None) -> SlotPool:
    """The pool of ``BATSCOPE_MAX_TRAININGS`` slots, shared with the server's other processes
    when ``BATSCOPE_SHARED_DIR`` names their folder."""
    capacity = max_trainings(environ)
    folder = shared_dir(environ)
    return SlotPool(capacity, None if folder is None else SlotFiles(folder, capacity))


TRAINING_SLOTS = training_slots()
