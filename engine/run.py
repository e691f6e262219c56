"""A training run on a daemon worker thread, steered by ``threading.Event`` s (no Panel here).

The worker calls ``trainer.step()`` (Numba kernels and CuPy release the GIL) and puts a NumPy
:class:`Snapshot` into an :class:`Outbox` every ``every_steps`` steps or at least every
``interval_s``; the session's periodic callback pulls them (app-architecture.md §4). A
process-global semaphore caps concurrent trainings (``BATSCOPE_MAX_TRAININGS``, default 4); a run
that waits for a slot is ``"queued"``.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable

from .telemetry import Outbox, Snapshot


def _max_trainings() -> int:
    value = os.environ.get("BATSCOPE_MAX_TRAININGS", "4")
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"BATSCOPE_MAX_TRAININGS must be an integer, got {value!r}") from None
    if n < 1:
        raise ValueError(f"BATSCOPE_MAX_TRAININGS must be >= 1, got {n}")
    return n


TRAINING_SLOTS = threading.BoundedSemaphore(_max_trainings())


def _free_gpu_pool() -> None:
    from .backend import gpu_available, xp_for

    if gpu_available():
        cp = xp_for("gpu")
        cp.get_default_memory_pool().free_all_blocks()
        cp.get_default_pinned_memory_pool().free_all_blocks()


class TrainingRun:
    """One worker thread per start. ``phase``: queued, running, paused, finished, stopped, error.

    ``make_trainer()`` is called on the worker (loading data and compiling may take a while).
    ``view()`` returns the keyword arguments of ``trainer.snapshot`` (sample, layer, neurons).
    """

    def __init__(
        self,
        make_trainer: Callable[[], object],
        view: Callable[[], dict] | None = None,
        every_steps: int = 0,
        interval_s: float = 0.2,
        heavy_interval_s: float = 1.0,
        slot_acquired: bool = False,
        outbox: Outbox | None = None,
    ):
        self._make_trainer = make_trainer
        self._view = view or dict
        self.every_steps = every_steps
        self.interval_s = interval_s
        self.heavy_interval_s = heavy_interval_s
        self.outbox = outbox or Outbox()
        self.go = threading.Event()
        self.stop = threading.Event()
        self.step_once = threading.Event()
        self.refresh = threading.Event()  # publish a snapshot now (the view changed)
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.error_text = ""
        self.trainer = None
        self.phase = "running" if slot_acquired else "queued"
        self.elapsed_s = 0.0  # time spent training (pauses excluded)
        self._has_slot = slot_acquired
        self._thread = threading.Thread(target=self._main, name="batscope-training", daemon=True)

    def start(self, paused: bool = False) -> None:
        if not paused:
            self.go.set()
        self._thread.start()

    def pause(self) -> None:
        self.go.clear()

    def resume(self) -> None:
        self.go.set()

    def request_step(self) -> None:
        """Run exactly one batch, then pause."""
        self.go.clear()
        self.step_once.set()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop and join; True if the worker has ended. Idempotent."""
        self.stop.set()
        self.go.set()
        self.step_once.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _main(self) -> None:
        try:
            while not self._has_slot and not self.stop.is_set():
                self._has_slot = TRAINING_SLOTS.acquire(timeout=0.1)
            if self.stop.is_set():
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
            if self._has_slot:
                TRAINING_SLOTS.release()
                self._has_slot = False
                if getattr(self.trainer, "backend", "cpu") == "gpu":
                    _free_gpu_pool()
            self.done.set()

    def _loop(self) -> None:
        trainer = self.trainer
        since = 0
        self._publish(heavy=True)
        last_put = last_heavy = time.perf_counter()
        while not self.stop.is_set() and not trainer.finished:
            single = self.step_once.is_set() and not self.go.is_set()
            if not (self.go.is_set() or single):
                self.phase = "paused"
                if since or self.refresh.is_set():  # show the state training paused in
                    self.refresh.clear()
                    self._publish(heavy=True)
                    since = 0
                self.step_once.wait(0.05)
                continue
            self.phase = "running" if not single else "paused"
            t0 = time.perf_counter()
            trainer.step()
            self.elapsed_s += time.perf_counter() - t0
            since += 1
            if single:
                self.step_once.clear()
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
