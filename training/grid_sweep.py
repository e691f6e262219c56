"""The app's sweep panel: the session's setup over one or two run settings × seeds (no Panel).

:class:`GridSweepController` is ``batscope sweep --config SETUP --set X=… [--set Y=…] --seeds …``
for the network and training set in the builder: the plan comes from
``training.sweep_plan.plan_sweep`` (every cell validated by the run configuration's schema before
anything starts, at most :data:`MAX_PANEL_RUNS` runs) and runs through
``training.sweep_cluster``: on the server's Dask cluster when the session's
``training.sweep_remote.ClusterChoice`` says so (``run_plan``), else one run after another in
this process (``run_plan_here``). Each run ends as a :class:`GridRun`, handed out by :meth:`poll`
on the session's loop (app-architecture.md §4).

The results location is a folder per sweep under :func:`sweeps_root`, named by a hash of the
sweep's cells, so starting the same sweep again (after Cancel, a reload, on another day) finds
its finished runs ("done") and resumes interrupted ones from their checkpoints. One sweep at a
time may write a folder: a second session starting the same sweep meanwhile is refused.

Like the Convergence tab's sweep, a sweep reserves its peak memory (the largest run's
``training.resources.training_estimate``) in the session's account and holds one of the server's
training slots until it ends, wherever its runs are computed.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import param
from batscope.datasets.cache import cache_dir

from .resources import RUN_HINT, SessionAccount, training_estimate
from .state import NetworkSpec, TrainingConfig, run_config
from .sweep_cluster import run_plan, run_plan_here
from .sweep_job import SweepJob
from .sweep_plan import SweepPlan, config_hash, parse_seeds, parse_set, plan_sweep
from .sweep_remote import ClusterChoice, dashboard_href, open_scheduler

SWEEP_DIR_ENV = "BATSCOPE_SWEEP_DIR"
MAX_PANEL_RUNS = 64  # runs of one sweep from the panel (the command line allows 10,000)
MAX_TEXT = 200  # characters of a values or seeds input
NONE = ""  # the second axis' "no field"
TRAINING_FIELDS = (
    "lr",
    "optimizer",
    "batch_size",
    "epochs",
    "lr_decay",
    "loss",
    "y_true",
    "y_false",
    "tau_l",
    "predict",
    "dtype",
)
LAYER_FIELDS = ("theta", "tau_s", "n_max", "init_mean", "init_std", "init_low", "init_high", "size")
CANCELLING = "Cancelling: a run already started ends first (on a worker it cannot be interrupted)."
STATUSES = ("idle", "queued", "running", "finished", "stopped", "error")

_busy_lock = threading.Lock()
_busy: set[Path] = set()  # results folders a sweep of this server writes now


def sweeps_root() -> Path:
    """``$BATSCOPE_SWEEP_DIR``, else ``sweeps/`` in the data cache (``$BATSCOPE_DATA``)."""
    value = os.environ.get(SWEEP_DIR_ENV, "").strip()
    return Path(value).expanduser() if value else cache_dir() / "sweeps"


def sweep_fields(layers: list[dict]) -> list[str]:
    """The dotted run-configuration fields the panel offers for the network ``layers`` (their
    dicts: a pool layer has no neuron fields, a conv layer no size)."""
    fields = [f"training.{f}" for f in TRAINING_FIELDS]
    for i, layer in enumerate(layers):
        last = i == len(layers) - 1  # its size is the task's class count
        names = [f for f in LAYER_FIELDS if f in layer and not (last and f == "size")]
        fields += [f"network.layers.{i}.{f}" for f in names]
    return fields


_DEFAULT_FIELDS = sweep_fields(NetworkSpec().to_dict()["layers"])


@dataclass(frozen=True)
class GridRun:
    """One run of the sweep that ended: its swept values, seed and record
    (``training.sweep_tasks``: ``status`` trained / done / error, accuracies, error)."""

    sweep_id: int
    key: str
    values: tuple  # ((field, value), ...) in the sweep's field order
    seed: int
    record: dict

    @property
    def accuracy(self) -> float | None:
        """Final test accuracy in percent (the training accuracy where the task has no test
        split); None for a failed run."""
        acc = self.record.get("final_test_accuracy")
        if acc is None:
            acc = self.record.get("final_train_accuracy")
        return None if acc is None else 100.0 * acc


class GridSweepController(param.Parameterized):
    """Start/cancel a sweep of the session's setup and hand out runs as they end."""

    x_field = param.Selector(default="training.lr", objects=_DEFAULT_FIELDS, doc="First axis")
    x_values = param.String("0.05, 0.1", doc="Values of the first axis, comma-separated")
    y_field = param.Selector(default=NONE, objects=[NONE, *_DEFAULT_FIELDS], doc="Second axis")
    y_values = param.String("", doc="Values of the second axis, comma-separated")
    seeds = param.String("0-1", doc="Seeds, e.g. 0-4 or 0,3,7")
    run = param.Event(doc="Start the sweep")
    stop = param.Event(doc="Cancel the sweep (finished runs stay; the same sweep resumes)")
    status = param.Selector(default="idle", constant=True, objects=list(STATUSES))
    runs_done = param.Integer(0, constant=True)
    runs_total = param.Integer(0, constant=True)
    elapsed_s = param.Number(0.0, constant=True)
    message = param.String("", constant=True, doc="Why a sweep was refused or failed")
    queue_position = param.Integer(0, constant=True)
    dashboard_link = param.String("", constant=True, doc="The Dask dashboard (http(s) only)")
    on_cluster = param.Boolean(False, constant=True, doc="Whether the last sweep runs on Dask")
    folder = param.String("", constant=True, doc="The results folder's name")

    def __init__(
        self,
        network: NetworkSpec,
        training: TrainingConfig,
        account: SessionAccount | None = None,
        cluster: ClusterChoice | None = None,
        **params,
    ):
        super().__init__(**params)
        self.network, self.training = network, training
        self.account = account if account is not None else SessionAccount()
        self.cluster = cluster if cluster is not None else ClusterChoice()
        self._lock = threading.Lock()
        self._job: SweepJob | None = None
        self._queue: list[GridRun] = []
        self._phase, self._error, self._done, self._link = "idle", "", 0, ""
        self._t0, self._t_end = 0.0, None
        self.sweep_id = 0
        self.plan: SweepPlan | None = None  # the last started sweep's plan
        network.param.watch(lambda *_: self._follow_layers(), "revision")
        self._follow_layers()

    # ---- settings ---------------------------------------------------------------------------
    def _follow_layers(self) -> None:
        fields = sweep_fields(self.network.to_dict()["layers"])
        self.param.x_field.objects = fields
        self.param.y_field.objects = [NONE, *fields]
        if self.x_field not in fields:
            self.x_field = fields[0]
        if self.y_field not in self.param.y_field.objects:
            self.y_field = NONE

    def grid(self) -> dict:
        """``{field: [values]}`` of the axes set; ValueError naming the input."""
        axes = [(self.x_field, self.x_values, "first axis")]
        if self.y_field != NONE:
            axes.append((self.y_field, self.y_values, "second axis"))
        grid = {}
        for field, text, which in axes:
            if len(text) > MAX_TEXT:
                raise ValueError(f"{which} values: at most {MAX_TEXT} characters")
            if field in grid:
                raise ValueError(f"second axis: {field} is the first axis already")
            name, values = parse_set(f"{field}={text}")
            if len(values) > MAX_PANEL_RUNS:
                raise ValueError(f"{which}: {len(values)} values; at most {MAX_PANEL_RUNS}")
            grid[name] = values
        return grid

    def make_plan(self) -> SweepPlan:
        """The sweep of the current setup and settings, every run validated; ValueError
        naming the field and the value (or the bound) otherwise. Nothing is written."""
        if len(self.seeds) > MAX_TEXT:
            raise ValueError(f"seeds: at most {MAX_TEXT} characters")
        seeds = parse_seeds(self.seeds)
        grid = self.grid()
        runs = len(seeds)
        for values in grid.values():
            runs *= len(values)
        if runs > MAX_PANEL_RUNS:
            raise ValueError(f"the sweep has {runs} runs; at most {MAX_PANEL_RUNS} from the app")
        base = {**run_config(self.network, self.training), "run": {"data": "sample"}}
        plan = plan_sweep(config=base, out=sweeps_root(), seeds=seeds, grid=grid)
        name = "sweep-" + config_hash({"fields": plan.fields, "runs": [c.key for c in plan.cells]})
        return SweepPlan(plan.name, plan.kind, plan.out / name, plan.fields, plan.cells)

    # ---- actions (session loop) -------------------------------------------------------------
    @param.depends("run", watch=True)
    def _on_run(self):
        try:
            self.start()
        except ValueError as exc:  # refused: say so, change nothing
            with param.edit_constant(self):
                self.message = str(exc)

    @param.depends("stop", watch=True)
    def _on_stop(self):
        self.request_stop()

    def start(self) -> None:
        """Start a sweep (a running one is told to stop first; nothing waits here).
        ``ValueError`` (``BudgetRefused`` among them) when it cannot start."""
        plan = self.make_plan()
        address = self.cluster.address if self.cluster.on_cluster else None
        old = self._job
        if old is not None and old.settings["plan"].out == plan.out and old.alive:
            if old.stop.is_set():
                raise ValueError("this sweep was cancelled and is still ending: start it again")
            raise ValueError("this sweep is running already: Cancel it first")
        estimate = max((training_estimate(c.config) for c in plan.cells), key=lambda e: e.total)
        with _busy_lock:
            if plan.out in _busy:
                raise ValueError("the same sweep is running in another session: wait for it")
            reservation = self.account.reserve(
                estimate, "this sweep", RUN_HINT, replaces=old.reservation if old else None
            )
            _busy.add(plan.out)
        if old is not None:
            old.stop.set()
        self.sweep_id += 1
        self.plan = plan
        settings = {"plan": plan, "address": address}
        job = SweepJob(self.sweep_id, settings, reservation, old if old and old.alive else None)
        job.queue()
        with self._lock:
            self._job, self._queue = job, []
            self._error, self._done, self._link, self._t_end = "", 0, "", None
            self._phase = "running" if job.holding else "queued"
        self._t0 = time.perf_counter()
        with param.edit_constant(self):
            self.param.update(
                status=self._phase,
                runs_done=0,
                runs_total=len(plan.cells),
                elapsed_s=0.0,
                message="",
                queue_position=job.position,
                dashboard_link="",
                on_cluster=address is not None,
                folder=plan.out.name,
            )
        try:
            job.start(self._main, "batscope-grid-sweep")
        except BaseException:
            self._end(job)
            raise

    def request_stop(self) -> None:
        """Cancel after the current step (here) or the runs already on workers (cluster)."""
        if self._job is not None:
            self._job.stop.set()

    def poll(self) -> list[GridRun]:
        """Runs ended since the last call; updates status and progress."""
        with self._lock:
            batch, self._queue = self._queue, []
            phase, done, error, link, job = (
                self._phase,
                self._done,
                self._error,
                self._link,
                self._job,
            )
        end = self._t_end if self._t_end is not None else time.perf_counter()
        updates = dict(runs_done=done, elapsed_s=end - self._t0 if self._t0 else 0.0)
        position = job.position if job is not None and phase == "queued" else 0
        if position != self.queue_position:
            updates["queue_position"] = position
        if phase != self.status:
            updates["status"] = phase
        if link != self.dashboard_link:
            updates["dashboard_link"] = link
        if job is not None and job.stop.is_set() and phase == "running":
            updates["message"] = CANCELLING
        elif self.message == CANCELLING:
            updates["message"] = ""
        if error:
            updates["message"] = error
        with param.edit_constant(self):
            self.param.update(**updates)
        return batch

    def shutdown(self, timeout: float = 10.0) -> bool:
        """Stop and join the worker (the session is destroyed); True if it has ended."""
        return self._job is None or self._job.stop_and_join(timeout)

    @property
    def alive(self) -> bool:
        return self._job is not None and self._job.alive

    # ---- worker -----------------------------------------------------------------------------
    def _main(self, job: SweepJob) -> None:
        try:
            if job.wait_turn():
                self._set(job, _phase="running", _t0=time.perf_counter())
                self._run(job)
            self._set(job, _phase="stopped" if job.stop.is_set() else "finished")
        except BaseException as exc:  # reported through poll(), never raised on the worker
            text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            self._set(job, _error=text, _phase="error")
        finally:
            self._set(job, _t_end=time.perf_counter())
            self._end(job)

    def _run(self, job: SweepJob) -> None:
        plan, address = job.settings["plan"], job.settings["address"]
        cells = {c.key: c for c in plan.cells}

        def ended(key: str, record: dict) -> None:
            cell = cells[key]
            found = GridRun(job.sweep_id, key, cell.values, cell.seed, record)
            with self._lock:
                if self._job is job:
                    self._queue.append(found)
                    self._done += 1

        if address is None:
            run_plan_here(plan, on_record=ended, should_stop=job.stop.is_set)
            return
        try:
            client = open_scheduler(address)
        except OSError:  # the address is the server's: not quoted to the participant
            raise RuntimeError(
                "the server's Dask cluster does not answer: turn off 'use cluster' to run here"
            ) from None
        try:
            self._set(job, _link=dashboard_href(client.dashboard_link))
            run_plan(plan, client, on_record=ended, should_stop=job.stop.is_set)
        finally:
            client.close()

    def _set(self, job: SweepJob, **fields) -> None:
        with self._lock:
            if self._job is job:
                for name, value in fields.items():
                    setattr(self, name, value)

    @staticmethod
    def _end(job: SweepJob) -> None:
        """Give back the slot, the memory and the results folder; idempotent."""
        job.release()
        with _busy_lock:
            _busy.discard(job.settings["plan"].out)
        job.done.set()
