"""TrainingController: Play / Pause / Step / Stop / Reset over a TrainingRun (param only, no Panel).

``status`` changes only in button handlers and in :meth:`poll`, both on the session's loop
(app-architecture.md §4). The trainer factory is injected: the app passes ``Trainer``, tests a fake.

Before a run is built, its peak memory (``training.resources.training_estimate``) is reserved in the
session's :class:`~batscope.training.resources.SessionAccount`; a run that does not fit is refused
with the broker's message and nothing starts. The worker releases the reservation when it ends.
Stop, Reset and a new Play never wait for the old worker on the session's loop: the new run's
worker waits for it instead.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import param
from batscope.training.run import TrainingRun
from batscope.training.telemetry import MetricRow, Snapshot
from batscope.training.trainer import build_network

from .resources import (
    CHECK_HINT,
    MODEL_HINT,
    RUN_HINT,
    BudgetRefused,
    Reservation,
    SessionAccount,
    check_estimate,
    model_estimate,
    training_estimate,
)
from .serversettings import event_data_refusal
from .state import (
    IMAGE_SHAPE,
    NetworkSpec,
    TrainingConfig,
    ViewConfig,
    apply_run_config,
    check_config,
    run_config,
    task_shape,
)

ACTIVE = ("queued", "running", "paused")


class TrainingController(param.Parameterized):
    """Owns at most one TrainingRun; exposes its progress as constant params."""

    start = param.Event(label="Play")
    pause = param.Event(label="Pause")
    step = param.Event(label="Step")
    stop = param.Event(label="Stop")
    reset = param.Event(label="Reset")

    status = param.Selector(
        default="idle",
        constant=True,
        objects=["idle", "queued", "running", "paused", "finished", "error"],
    )
    message = param.String("", constant=True, doc="Why the run stopped or cannot start")
    queue_position = param.Integer(
        0, constant=True, doc="Place in the queue for a training slot (1 = next); 0 if not queued"
    )
    epoch = param.Integer(0, constant=True)
    batch = param.Integer(0, constant=True)
    n_batches = param.Integer(0, constant=True)
    epochs = param.Integer(0, constant=True)
    steps = param.Integer(0, constant=True, doc="Batches trained so far")
    progress = param.Number(0.0, bounds=(0, 1), constant=True)
    eta_s = param.Number(math.nan, constant=True, doc="Estimated seconds remaining")
    generation = param.Integer(0, constant=True, doc="Incremented on Reset: views clear")
    loss = param.Number(math.nan, constant=True, doc="Loss of the latest training batch")
    accuracy = param.Number(math.nan, constant=True, doc="Accuracy of the latest training batch")

    def __init__(
        self,
        network: NetworkSpec,
        training: TrainingConfig,
        view: ViewConfig,
        trainer_factory: Callable[[dict], object],
        run_options: dict | None = None,
        account: SessionAccount | None = None,
        **params,
    ):
        super().__init__(**params)
        self.network, self.training, self.view = network, training, view
        self._factory = trainer_factory
        self._run_options = run_options or {}
        self.account = account if account is not None else SessionAccount()
        self.run: TrainingRun | None = None
        self._reservation: Reservation | None = None  # the current run's
        self.history: list[MetricRow] = []
        self.last: Snapshot | None = None
        self.initial_weights: list | None = None  # from an uploaded model; cleared by Reset
        self.opened = ""  # the run folder being explored (open_record), "" otherwise
        self._record: Snapshot | None = None  # its record, for the next poll
        view.param.watch(self._on_view, ["sample_index", "layer", "neurons"])
        training.param.watch(self._on_epochs, "epochs")
        self._set(epochs=training.epochs)

    # -- effects of the buttons ------------------------------------------------------------
    @param.depends("start", watch=True)
    def _on_start(self):
        if self.opened:  # an opened run is explored: Play trains a new run from its weights
            self._launch(paused=False)
        elif self.status in ("paused", "queued") and self.run is not None:
            self.run.resume()
            self._set(status="queued" if self.run.phase == "queued" else "running")
        elif self.status != "running":
            self._launch(paused=False)

    @param.depends("pause", watch=True)
    def _on_pause(self):
        if self.run is not None and self.status in ("running", "queued"):
            self.run.pause()
            self._set(status="paused" if self.status == "running" else "queued")

    @param.depends("step", watch=True)
    def _on_step(self):
        if self.run is None or self.status in ("idle", "finished", "error") or self.opened:
            if not self._launch(paused=True):
                return
        self.run.request_step()
        if self.status == "running":
            self._set(status="paused")
        elif self.status == "queued":  # each click is seen, even before the slot comes
            self._set(message=self._queue_text(self.run))

    @param.depends("stop", watch=True)
    def _on_stop(self):
        if self.run is not None and self.status in ACTIVE:
            self._end_run()
            self._set(status="finished", message="Stopped.", queue_position=0)

    @param.depends("reset", watch=True)
    def _on_reset(self):
        self.initial_weights = None
        self._clear("")

    def _clear(self, message: str) -> None:
        self._end_run()
        self.history.clear()
        self.last = None
        self.opened, self._record = "", None
        self._set(
            status="idle",
            message=message,
            epoch=0,
            batch=0,
            steps=0,
            progress=0.0,
            eta_s=math.nan,
            loss=math.nan,
            accuracy=math.nan,
            queue_position=0,
            generation=self.generation + 1,
        )

    def load_weights(self, weights: list) -> None:
        """Stop any run; the next run starts from ``weights`` (an uploaded model)."""
        self.initial_weights = [w.copy() for w in weights]
        self._clear(
            "Model loaded: Play or Step trains from its weights; Reset returns to the "
            "seed's initialisation."
        )

    def open_record(self, opened, config: dict) -> bool:
        """Explore an opened run folder (training/runlibrary.py ``OpenedRun``) with the run
        configuration ``config``: its weights become the session's, its record (curves, sparsity
        history, latency) goes to the views as one snapshot, and a paused run publishes the
        model's snapshots for any sample through the live path (training/run.py). Play or Step
        then trains a new run from its weights. False (with a message) if it does not fit the
        memory budget: checked first, so a refused run changes nothing."""
        try:
            with self.account.reserve(
                training_estimate(config), "this run", RUN_HINT, replaces=self._reservation
            ):
                pass
        except BudgetRefused as exc:
            self._set(message=str(exc))
            return False
        apply_run_config(config, self.network, self.training)
        self.load_weights(opened.weights)
        if not self._launch(paused=True):
            return False
        last = opened.rows[-1]
        self.opened = opened.name
        self._record = Snapshot(
            step=last.step,
            epoch=opened.epochs,
            batch=0,
            n_batches=1,
            epochs=opened.epochs,
            status="finished",
            rows=opened.rows,
            sparsity_rows=opened.sparsity_rows,
            latency=opened.latency,
            extra={"progress": 1.0},
        )
        self._set(
            message=f"Run {opened.name} opened (epoch {opened.epochs}): choose any sample to "
            "explore its model; its curves and sparsity come from its record. Play or Step "
            "trains a new run from its weights."
        )
        return True

    def current_network(self):
        """The live network of the run, or a fresh one built from the config (for download)."""
        trainer = self.run.trainer if self.run is not None else None
        if trainer is not None:
            return trainer.network
        config = run_config(self.network, self.training)
        net = build_network(config, task_shape(self.training.task)[0])
        if self.initial_weights is not None:
            net.weights = self.initial_weights
        return net

    def _on_epochs(self, event):
        if self.status == "idle":
            self._set(epochs=event.new)

    def _on_view(self, *events):
        if self.run is not None:  # a paused run re-publishes the newly chosen sample / layer
            self.run.refresh.set()

    # -- helpers ---------------------------------------------------------------------------
    def _set(self, **values):
        with param.edit_constant(self):
            self.param.update(**values)

    def view_request(self) -> dict:
        """What the worker's snapshots show (read from the worker thread: plain values only)."""
        v = self.view
        return {"sample_index": v.sample_index, "layer": v.layer, "neurons": list(v.neurons)}

    def reserve_check(self, batch: int) -> Reservation:
        """Reserve a gradient check's memory on ``batch`` samples (raises BudgetRefused)."""
        config = run_config(self.network, self.training)
        return self.account.reserve(check_estimate(config, batch), "this check", CHECK_HINT)

    def reserve_model(self, n_inputs: int, specs) -> Reservation:
        """Reserve the memory of loading a model of ``n_inputs`` inputs and layers ``specs``
        (``LayerSpec`` s, known from the upload's header) before its weights are read; use as
        ``with controller.reserve_model(...): ...`` (raises BudgetRefused)."""
        image = any(s.kind != "dense" for s in specs)
        estimate = model_estimate(IMAGE_SHAPE if image else (n_inputs,), specs)
        return self.account.reserve(estimate, "this model", MODEL_HINT)

    def _launch(self, paused: bool) -> bool:
        """Start a fresh run from the current config; False (with a message) if it is invalid
        or does not fit the memory budget."""
        self.opened, self._record = "", None
        problems = check_config(self.network, self.training)
        missing = event_data_refusal(self.training.task)  # SHD: the server's files
        problems += [missing] if missing else []
        if problems:
            self._set(status="idle", message=" ".join(problems))
            return False
        config = run_config(self.network, self.training)
        old = self.run
        try:  # an old run still ending gives its memory back before the new one allocates
            reservation = self.account.reserve(
                training_estimate(config), "this run", RUN_HINT, replaces=self._reservation
            )
        except BudgetRefused as exc:
            self._set(message=str(exc))
            return False
        self._end_run()
        if self.history:  # a new run after a finished one: start the curves afresh
            self.history.clear()
            self._set(generation=self.generation + 1)
        weights, factory = self.initial_weights, self._factory

        def make_trainer():
            trainer = factory(config)
            if weights is not None:
                trainer.network.weights = weights
            return trainer

        self._reservation = reservation
        self.run = TrainingRun(
            make_trainer,
            self.view_request,
            after=old if old is not None and old.alive else None,
            on_end=reservation.release,
            **self._run_options,
        )
        try:
            self.run.start(paused=paused)
        except BaseException:  # the run released its slot and reservation itself
            self.run = None
            raise
        status = self.run.phase if self.run.phase in ACTIVE else "queued"
        self._set(
            status=status,
            message=self._queue_text(self.run) if status == "queued" else "",
            queue_position=self.run.queue_position,
            epochs=self.training.epochs,
            epoch=0,
            batch=0,
            steps=0,
            progress=0.0,
            eta_s=math.nan,
        )
        return True

    @staticmethod
    def _queue_text(run: TrainingRun) -> str:
        place = run.queue_position
        text = "Waiting for a free training slot"
        text += f": place {place} in the queue." if place else "…"
        steps = run.steps_wanted
        if steps and not run.go.is_set():
            text += f" {steps} step{'s' if steps > 1 else ''} to train then."
        return text

    def _end_run(self, join: bool = False) -> None:
        """Stop the run; its worker gives back its slot and memory when its batch ends.
        ``join`` waits for that (session destroyed); otherwise nothing waits here."""
        if self.run is not None:
            if join:
                self.run.shutdown()
            else:
                self.run.cancel()
            self.run = None

    # -- the pull side -----------------------------------------------------------------------
    def poll(self) -> list[Snapshot]:
        """Drain the run's outbox; update progress and, when the run ends, the status."""
        run = self.run
        if run is None:
            return []
        ended = run.done.is_set()  # read before draining: the final snapshot precedes done
        batch = run.outbox.drain()
        if self.opened:  # the explored model's sparsity history is its record's
            batch = [dataclasses.replace(s, sparsity_rows=()) for s in batch]
        if self._record is not None:
            batch, self._record = [self._record, *batch], None
        values = {}
        if batch:
            snap = self.last = batch[-1]
            for s in batch:
                self.history.extend(s.rows)
            p = snap.extra.get("progress", 0.0)
            train = [r for s in batch for r in s.rows if r.split == "train"]
            if train:
                values.update(loss=train[-1].loss, accuracy=train[-1].accuracy)
            values.update(
                epoch=snap.epoch,
                batch=snap.batch,
                n_batches=snap.n_batches,
                epochs=snap.epochs,
                steps=snap.step,
                progress=p,
                eta_s=snap.elapsed_s * (1 - p) / p if p > 0 else math.nan,
            )
        phase = run.phase
        if not ended and phase == "queued" and self.status != "queued" and run.wants_slot:
            values.update(status="queued")  # resumed after giving its slot back: queues again
        elif self.status == "queued" and phase in ("running", "paused"):
            values.update(status="running" if run.go.is_set() else "paused", message="")
        position = run.queue_position if phase == "queued" and not ended else 0
        if position != self.queue_position:
            values.update(queue_position=position)
        if values.get("status", self.status) == "queued" and not ended:
            values.update(message=self._queue_text(run))
        if ended:
            if run.error is not None:
                values.update(status="error", message=run.error_text)
            elif run.phase == "finished":
                values.update(status="finished", message="Training finished.", eta_s=0.0)
        if values:
            self._set(**values)
        return batch

    def shutdown(self) -> None:
        """Stop and join the worker (idempotent); called when the session is destroyed."""
        self._end_run(join=True)
