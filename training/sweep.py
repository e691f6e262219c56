"""The convergence sweep (paper Fig. 3, docs/training.md §4) on a background thread (no Panel).

:class:`SweepController` runs ``engine.convergence.run_sweep`` for the single-spike and multi-spike
variants, chunk by chunk, on one daemon thread. Finished cells are queued by the worker and handed
out by :meth:`SweepController.poll`, which the session calls periodically on its own event loop
(app-architecture.md §4); ``status`` changes only there and in the button handlers. The sweep
shares the process-wide training cap ``engine.slots.TRAINING_SLOTS`` with training runs, and is
``"queued"`` (with its place in the queue) while it waits for a slot.

Before a sweep starts, its peak memory (``training.resources.sweep_estimate``) is reserved in the
session's account; a sweep that does not fit is refused with the broker's message. A new Run
never waits on the session's loop: the old sweep is told to stop and the new worker waits for it
to end before it queues for a slot. Each worker gives back its slot and its reservation when it
ends, however it ends, so a chunk that outlasts any timeout cannot leak either. With a
``training.sweep_remote.ClusterChoice`` set to "use cluster", a sweep's chunks run on the server's
Dask cluster (the choice is read when the sweep starts); the slot and the reservation are held
all the same.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import param
from batscope.engine import convergence
from batscope.engine.backend import available_backends
from batscope.training.state import SweepConfig, grid_axis

from .resources import SWEEP_HINT, SessionAccount, sweep_estimate
from .sweep_job import SweepJob
from .sweep_remote import ClusterChoice, dashboard_href

VARIANTS = ("single", "multi")


@dataclass(frozen=True)
class SweepCells:
    """Cells of one variant that finished since the previous poll.

    ``mu`` and ``sigma`` are the sweep's full grid axes; ``mu_index``/``sigma_index`` locate the
    new cells in them. ``accuracy`` is the mean over runs of each run's best training accuracy, in
    percent; ``runs`` the number of runs averaged. ``sweep_id`` changes with every Run.
    """

    sweep_id: int
    variant: str  # "single" | "multi"
    mu: np.ndarray  # [n_mu] grid values
    sigma: np.ndarray  # [n_sigma] grid values
    mu_index: np.ndarray  # [n] int
    sigma_index: np.ndarray  # [n] int
    accuracy: np.ndarray  # [n] percent
    runs: np.ndarray  # [n] int
    predict: str  # "reference" | "strict"


def _engine_config(variant: str, s: dict) -> convergence.SweepConfig:
    """The engine's config of one variant from the controller's settings dict."""
    return convergence.SweepConfig(
        means=tuple(s["mu"]),
        stds=tuple(s["sigma"]),
        repeats=s["repeats"],
        epochs=s["epochs"],
        variant=variant,
        tie_mode=s["predict"],
        seed=s["seed"],
        backend=s["backend"],
    )


class SweepController(param.Parameterized):
    """Run/stop the convergence sweep in the background and hand out finished cells.

    ``config`` is an ``training.state.SweepConfig`` (grid, repeats, epochs, seed, tie mode);
    ``variants`` says which heatmaps to compute. ``runner`` is ``engine.convergence.run_sweep`` by
    default (tests may inject a fake with the same signature); without one, ``cluster`` (a
    ``ClusterChoice``) may send each sweep to the server's Dask cluster.
    """

    run = param.Event(doc="Start a sweep with the current settings")
    stop = param.Event(doc="Stop the running sweep (finished cells stay)")
    variants = param.ListSelector(default=list(VARIANTS), objects=list(VARIANTS))
    backend = param.Selector(default="cpu", objects=["cpu"], doc="Where the runs are computed")
    chunk_cells = param.Integer(
        13, bounds=(1, None), doc="Cells per chunk: the heatmap fills in chunk by chunk"
    )
    status = param.Selector(
        default="idle",
        constant=True,
        objects=["idle", "queued", "running", "finished", "stopped", "error"],
    )
    cells_done = param.Integer(0, constant=True)
    cells_total = param.Integer(0, constant=True)
    elapsed_s = param.Number(0.0, constant=True)
    message = param.String("", constant=True, doc="Error text, or a note on the last sweep")
    queue_position = param.Integer(
        0, constant=True, doc="Place in the queue for a training slot (1 = next); 0 if not queued"
    )

    def __init__(
        self,
        config: SweepConfig | None = None,
        runner: Callable | None = None,
        account: SessionAccount | None = None,
        cluster: ClusterChoice | None = None,
        **params,
    ):
        super().__init__(**params)
        self.param.backend.objects = available_backends()
        self.config = config if config is not None else SweepConfig()
        self.account = account if account is not None else SessionAccount()
        self.cluster = cluster
        self._runner = runner
        self._queue: deque[SweepCells] = deque()
        self._lock = threading.Lock()
        self._job: SweepJob | None = None
        self._error = ""
        self._phase = "idle"
        self._done = 0
        self._t0 = 0.0
        self._t_end: float | None = None
        self.sweep_id = 0
        self.settings: dict | None = None  # grid and settings of the last started sweep
        self._listeners: list[Callable[[list[SweepCells]], None]] = []

    # ---- actions (session loop) -------------------------------------------------------------
    @param.depends("run", watch=True)
    def _on_run(self):
        try:
            self.start()
        except ValueError as exc:  # e.g. no variant selected: say so instead of raising
            with param.edit_constant(self):
                self.message = str(exc)

    @param.depends("stop", watch=True)
    def _on_stop(self):
        self.request_stop()

    def start(self) -> None:
        """Start a new sweep; a running one is told to stop and the new worker waits for it
        (nothing waits here). ``ValueError`` (``BudgetRefused``) if it cannot start."""
        cfg = self.config
        mu = grid_axis(cfg.mu_max, cfg.step)
        sigma = grid_axis(cfg.sigma_max, cfg.step)
        variants = [v for v in VARIANTS if v in self.variants]
        if not variants:
            raise ValueError("variants must name at least one of 'single', 'multi'")
        settings = self._settings(mu, sigma, variants)
        old = self._job
        estimate = sweep_estimate([_engine_config(v, settings) for v in variants], self.chunk_cells)
        reservation = self.account.reserve(
            estimate, "this sweep", SWEEP_HINT, replaces=old.reservation if old else None
        )
        if old is not None:
            old.stop.set()
        self.sweep_id += 1
        self.settings = settings
        job = SweepJob(self.sweep_id, settings, reservation, old if old and old.alive else None)
        job.runner = self._runner
        if job.runner is None and self.cluster is not None:
            job.runner = self.cluster.convergence_runner()
        job.queue()
        with self._lock:
            self._job = job
            self._queue.clear()
            self._error, self._done, self._t_end = "", 0, None
            self._phase = "running" if job.holding else "queued"
        self._t0 = time.perf_counter()
        with param.edit_constant(self):
            self.param.update(
                status=self._phase,
                cells_done=0,
                elapsed_s=0.0,
                message=self._queue_text(job) if self._phase == "queued" else "",
                queue_position=job.position,
                cells_total=len(variants) * mu.size * sigma.size,
            )
        job.start(self._main, "batscope-sweep")

    def request_stop(self) -> None:
        """Ask the worker to stop after the current chunk; ``poll()`` then reports "stopped"."""
        if self._job is not None:
            self._job.stop.set()

    def add_listener(self, fn: Callable[[list[SweepCells]], None]) -> None:
        """Call ``fn(batch)`` from :meth:`poll` whenever it hands out cells (e.g. a view's
        ``update``), so whoever polls, the views get every cell."""
        self._listeners.append(fn)

    def poll(self) -> list[SweepCells]:
        """Cells finished since the last call (oldest first); updates status and progress, and
        passes non-empty batches to the listeners."""
        with self._lock:
            batch = list(self._queue)
            self._queue.clear()
            phase, done, error, job = self._phase, self._done, self._error, self._job
        end = self._t_end if self._t_end is not None else time.perf_counter()
        updates = dict(cells_done=done, elapsed_s=end - self._t0 if self._t0 else 0.0)
        position = job.position if job is not None and phase == "queued" else 0
        if position != self.queue_position:
            updates["queue_position"] = position
        if phase == "queued":
            updates["message"] = self._queue_text(job)
        elif self.status == "queued":
            updates["message"] = ""
        if phase != self.status:
            updates["status"] = phase
        if error:
            updates["message"] = error
        with param.edit_constant(self):
            self.param.update(**updates)
        if batch:
            for fn in self._listeners:
                fn(batch)
        return batch

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop and join the worker (the session is destroyed); True if it has ended; it
        gives back its slot and memory when its chunk ends even if this times out.
        Idempotent."""
        return self._job is None or self._job.stop_and_join(timeout)

    def _queue_text(self, job: SweepJob | None) -> str:
        place = job.position if job is not None else 0
        return f"Place {place} in the queue for a training slot." if place else ""

    def engine_config(self, variant: str) -> convergence.SweepConfig:
        """The engine's config of ``variant`` for the last started sweep (else the settings)."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        s = self.settings
        if s is None:
            c = self.config
            s = self._settings(grid_axis(c.mu_max, c.step), grid_axis(c.sigma_max, c.step), [])
        return _engine_config(variant, s)

    def _settings(self, mu, sigma, variants) -> dict:
        c = self.config
        return dict(
            mu=mu,
            sigma=sigma,
            variants=variants,
            repeats=c.repeats,
            epochs=c.epochs,
            seed=c.seed,
            predict=c.predict,
            backend=self.backend,
        )

    def drill_down(
        self, variant: str, mu_index: int, sigma_index: int, repeat: int = 0
    ) -> convergence.RunTrace:
        """Re-run one run of a cell with per-epoch histories (``engine.convergence.run_single``);
        its accuracies equal that run's inside the sweep."""
        cfg = self.engine_config(variant)
        if not (0 <= mu_index < len(cfg.means) and 0 <= sigma_index < len(cfg.stds)):
            raise ValueError(f"cell ({mu_index}, {sigma_index}) is outside the grid")
        return convergence.run_single(cfg.means[mu_index], cfg.stds[sigma_index], repeat, cfg)

    @property
    def alive(self) -> bool:
        return self._job is not None and self._job.alive

    @property
    def dashboard_link(self) -> str:
        """The Dask dashboard of the cluster the last sweep runs on (``training.sweep_remote``),
        once it has reached it; "" when it runs in this process."""
        job = self._job
        return dashboard_href(getattr(job.runner, "dashboard_link", "")) if job else ""

    # ---- worker -----------------------------------------------------------------------------
    def _main(self, job: SweepJob) -> None:
        try:
            if not job.wait_turn():
                self._set_phase(job, "stopped")
                return
            self._set_phase(job, "running")
            with self._lock:
                if self._job is job:
                    self._t0 = time.perf_counter()
            for variant in job.settings["variants"]:
                if job.stop.is_set():
                    break
                self._run_variant(variant, job)
            self._set_phase(job, "stopped" if job.stop.is_set() else "finished")
        except BaseException as exc:  # reported through poll(), never raised on the worker
            with self._lock:
                if self._job is job:
                    self._error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                    self._phase = "error"
        finally:
            with self._lock:
                if self._job is job:
                    self._t_end = time.perf_counter()
            job.release()
            job.done.set()

    def _set_phase(self, job: SweepJob, phase: str) -> None:
        with self._lock:
            if self._job is job:
                self._phase = phase

    def _run_variant(self, variant: str, job: SweepJob) -> None:
        runner = job.runner or convergence.run_sweep
        s, sweep_id = job.settings, job.sweep_id
        cfg = _engine_config(variant, s)
        mu, sigma, repeats, predict = s["mu"], s["sigma"], s["repeats"], s["predict"]

        def on_chunk(cells, accuracy) -> None:  # cells [n, 2] of (σ index, μ index)
            cells = np.asarray(cells, dtype=int).reshape(-1, 2)
            found = SweepCells(
                sweep_id,
                variant,
                mu,
                sigma,
                cells[:, 1],
                cells[:, 0],
                100.0 * np.asarray(accuracy, dtype=float),
                np.full(len(cells), repeats),
                predict,
            )
            with self._lock:
                if self._job is job:  # a replaced sweep's last chunk is dropped
                    self._queue.append(found)
                    self._done += len(cells)

        runner(cfg, chunk_cells=self.chunk_cells, callback=on_chunk, should_stop=job.stop.is_set)
