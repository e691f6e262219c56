"""A training run on a daemon worker thread, steered by ``threading.Event`` s (no Panel here).

The worker calls ``trainer.step()`` (Numba kernels and CuPy release the GIL) and puts a NumPy
:class:`Snapshot` into an :class:`Outbox` every ``every_steps`` steps or at least every
``interval_s``; the session's periodic callback pulls them (app-architecture.md §4).

The process-global slot pool ``engine.slots.TRAINING_SLOTS`` caps concurrent trainings
(``BATSCOPE_MAX_TRAININGS``, default 4) and serves waiting runs first come, first served; a run
that waits for a slot is ``"queued"`` and knows its place in the queue. A run paused for longer
than a grace period (``BATSCOPE_SLOT_GRACE_S``, default 10 s) gives its slot back and queues for
one again when it resumes, so paused runs never block the room. The worker gives its slot back
in ``finally``: whatever ends it (the run finishing, Stop, an exception), no slot is kept.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable

from batscope.engine.slots import TRAINING_SLOTS, SlotPool, SlotTicket, slot_grace_s

from .priority import lower_thread_priority
from .telemetry import Outbox, Snapshot


def _free_gpu_pool() -> None:
    from batscope.engine.backend import gpu_available, xp_for

    if gpu_available():
        cp = xp_for("gpu")
        cp.get_default_memory_pool().free_all_blocks()
        cp.get_default_pinned_memory_pool().free_all_blocks()


class TrainingRun:
    """One worker thread per start. ``phase``: queued, running, paused, finished, stopped, error.

    ``make_trainer()`` is called on the worker (loading data and compiling may take a while).
    ``view()`` returns the keyword arguments of ``trainer.snapshot`` (sample, layer, neurons).
    ``after`` is a run being stopped: the worker waits for it to end before it queues for a slot
    (nothing waits on the caller's thread). ``on_end()`` is called once on the worker when it
    ends, however it ends (the session's memory reservation is released there).
    """

    def __init__(
        self,
        make_trainer: Callable[[], object],
        view: Callable[[], dict] | None = None,
        every_steps: int = 0,
        interval_s: float = 0.2,
        heavy_interval_s: float = 1.0,
        outbox: Outbox | None = None,
        slots: SlotPool | None = None,
        grace_s: float | None = None,
        after: TrainingRun | None = None,
        on_end: Callable[[], None] | None = None,
    ):
        self._make_trainer = make_trainer
        self._view = view or dict
        self.every_steps = every_steps
        self.interval_s = interval_s
        self.heavy_interval_s = heavy_interval_s
        self.outbox = outbox or Outbox()
        self.slots = slots if slots is not None else TRAINING_SLOTS
        self.grace_s = slot_grace_s() if grace_s is None else float(grace_s)
        self._after = after
        self._on_end = on_end
        self.go = threading.Event()
        self.stop = threading.Event()
        self.wake = threading.Event()  # a Step or a cancel: the paused worker looks again
        self._steps_lock = threading.Lock()
        self._steps_wanted = 0  # Step clicks not yet trained: each one is one batch
        self.refresh = threading.Event()  # publish a snapshot now (the view changed)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.error_text = ""
        self.trainer = None
        self.phase = "queued"
        self.elapsed_s = 0.0  # time spent training (pauses excluded)
        self._ticket: SlotTicket | None = None
        self._thread = threading.Thread(target=self._main, name="batscope-training", daemon=True)

    def start(self, paused: bool = False) -> None:
        """Start the worker; ``phase`` says at once whether a slot was free."""
        if not paused:
            self.go.set()
        if self._after is None or self._after.done.is_set():
            self._ticket = self.slots.ticket()
            if self._ticket.holding:
                self.phase = "paused" if paused else "running"
        try:
            self._thread.start()
        except BaseException:  # no worker: nobody else would give the slot back
            self._end()
            self.done.set()
            raise

    def pause(self) -> None:
        self.go.clear()
        self._set_steps(0)

    def resume(self) -> None:
        self._set_steps(0)
        self.go.set()

    def request_step(self) -> None:
        """Run exactly one more batch, then pause: two quick Steps train two batches, even
        when the second comes while the first is training."""
        self.go.clear()
        with self._steps_lock:
            self._steps_wanted += 1
            self.wake.set()

    def _set_steps(self, n: int) -> None:
        with self._steps_lock:
            self._steps_wanted = n
            if n == 0:
                self.wake.clear()

    def _step_done(self) -> None:
        with self._steps_lock:
            self._steps_wanted = max(self._steps_wanted - 1, 0)
            if self._steps_wanted == 0:
                self.wake.clear()

    def cancel(self) -> None:
        """Ask the worker to stop after its current batch; returns at once."""
        self.stop.set()
        self.go.set()
        self.wake.set()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop and join; True if the worker has ended. Idempotent."""
        self.cancel()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def has_slot(self) -> bool:
        t = self._ticket
        return t is not None and t.holding

    @property
    def queue_position(self) -> int:
        """Place in the queue for a slot (1 = next); 0 when not queued for one."""
        t = self._ticket
        return t.position if t is not None else 0

    @property
    def steps_wanted(self) -> int:
        """Step clicks not trained yet."""
        return self._steps_wanted

    @property
    def wants_slot(self) -> bool:
        """Playing or asked for a step: a paused run without its slot queues for one."""
        return self.go.is_set() or self._steps_wanted > 0

    def _take_slot(self, only_if_wanted: bool) -> bool:
        """Queue for a slot until it is held; False if stopped first (or, with
        ``only_if_wanted``, paused again while queued: the place in the queue is given up)."""
        if self._ticket is None:
            self._ticket = self.slots.ticket()
        while not self._ticket.wait(0.05):
            if self.stop.is_set() or (only_if_wanted and not self.wants_slot):
                self._give_slot()
                return False
            self.phase = "queued"
        return not self.stop.is_set()

    def _give_slot(self) -> None:
        t, self._ticket = self._ticket, None
        if t is not None:
            t.leave()

    def _end(self) -> None:
        """Give back everything the run holds; safe to call more than once."""
        on_end, self._on_end = self._on_end, None
        try:
            self._give_slot()
            if getattr(self.trainer, "backend", "cpu") == "gpu":
                _free_gpu_pool()
        finally:  # a failing GPU call must not keep the memory reserved
            if on_end is not None:
                on_end()

    def _main(self) -> None:
        lower_thread_priority()  # the server's pages go first (training/priority.py)
        try:
            while self._after is not None and not self._after.done.wait(0.05):
                if self.stop.is_set():
                    break
            self._after = None  # the old run may be freed
            if not self._take_slot(only_if_wanted=False):
                self.phase = "stopped"
                return
            self.phase = "running" if self.go.is_set() else "paused"
            self.trainer = self._make_trainer()
            self._loop()
        except BaseException as exc:  # reported to the UI, never raised on the worker
            self.error = exc
            self.error_text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self.phase = "error"
        finally:
            try:
                self._end()
            finally:
                self.done.set()

    def _loop(self) -> None:
        trainer = self.trainer
        since = 0
        self._publish(heavy=True)
        last_put = last_heavy = time.perf_counter()
        paused_at: float | None = None
        while not self.stop.is_set() and not trainer.finished:
            single = self._steps_wanted > 0 and not self.go.is_set()
            if not (self.go.is_set() or single):
                self.phase = "paused"
                if since or self.refresh.is_set():  # show the state training paused in
                    self.refresh.clear()
                    self._publish(heavy=True)
                    since = 0
                now = time.perf_counter()
                paused_at = paused_at if paused_at is not None else now
                if self.has_slot and now - paused_at >= self.grace_s:
                    self._give_slot()  # idle: let a queued run train meanwhile
                self.wake.wait(0.05)
                continue
            paused_at = None
            if not self.has_slot and not self._take_slot(only_if_wanted=True):
                continue  # stopped, or paused again while queued
            single = self._steps_wanted > 0 and not self.go.is_set()
            self.phase = "running" if not single else "paused"
            t0 = time.perf_counter()
            trainer.step()
            self.elapsed_s += time.perf_counter() - t0
            since += 1
            if single:
                self._step_done()
            now = time.perf_counter()
            due = (
                self.every_steps and since >= self.every_steps
            ) or now - last_put >= self.interval_s
            if (single or due) and not trainer.finished:
                heavy = single or now - last_heavy >= self.heavy_interval_s
                self._publish(heavy=heavy)
                last_put, since = now, 0
                if heavy:
                    last_heavy = now
        if self.stop.is_set():
            self.phase = "stopped"
        else:
            self.phase = "finished"
            self._publish(heavy=True)

    def _publish(self, heavy: bool) -> None:
        snap: Snapshot = self.trainer.snapshot(
            **self._view(), status=self.phase, elapsed_s=self.elapsed_s, heavy=heavy
        )
        self.outbox.put(snap)
