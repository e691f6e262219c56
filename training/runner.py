"""One command-line training run (one seed) into its run folder, resumable at any moment.

Per epoch: train every batch (progress bar with samples/s and ETA), evaluate the selection split
(validation; the training set when the task has none) and the test set, report alerts, keep the
best checkpoint by the selection split, apply the remedies asked for, then write the ``last``
checkpoint, which also records how long each log was: a resumed run cuts the logs back and
recomputes the interrupted epoch, which ends bit for bit as it would have. ``should_stop``
(the app's sweep panel) ends a run between two steps with :class:`RunStopped`; its folder then
resumes from the last checkpoint like a killed run.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .checkpoint import read_checkpoint, restore_trainer, trainer_state, write_checkpoint
from .data import load_run_data
from .evaluation import Evaluation, mean_finite, take
from .health import StepWatch, alerts, collapsed, new_alerts
from .remedies import MIN_FIRING, PROBE, redraw_silent, revive_silent, rollback
from .runfolder import RunFolder
from .telemetry import MetricRow
from .trainer import Trainer

LOG_INTERVAL_S = 30.0  # seconds between progress lines when stderr is not a terminal


class RunStopped(Exception):
    """``RunSession.run`` was asked to stop; the folder resumes from its last checkpoint."""


class RunSession:
    """Train ``config`` into ``folder``; ``say`` prints a line (alerts, summaries), ``bars``
    draws a progress bar per epoch."""

    def __init__(
        self, config: dict, folder: Path, *, data_dir=None, download=False, say=None, bars=True
    ):
        self.config = config
        self.bars = bars
        self.folder = RunFolder(folder)
        self.data_dir = data_dir
        self.download = download
        self.say = say or (lambda text: tqdm.write(text, file=sys.stderr))
        self.remedies = set(config["run"].get("remedies", []))
        self.best = {"epoch": -1, "accuracy": -math.inf}
        self.alerts: list[str] = []
        self.reported: dict = {}  # the last state reported of each alert kind
        self.elapsed_s = 0.0
        self.last: dict[str, Evaluation] = {}
        self.watch = StepWatch()

    # --- set-up -------------------------------------------------------------------------------
    def prepare(self, resume: bool) -> Trainer:
        """Load the data (a missing dataset is refused before any folder is made), then open."""
        data = load_run_data(self.config, self.data_dir, self.download)
        self.folder.open(self.config, resume)
        trainer = Trainer(self.config, data=data)
        self.selection = "val" if data.val is not None else "train"
        last = read_checkpoint(self.folder.checkpoints, "last") if resume else None
        if last is None:
            self.folder.cut({})
            if "redraw-silent" in self.remedies:
                self._redraw(trainer)
            self._epoch_zero(trainer)
            return trainer
        arrays, meta = last
        restore_trainer(trainer, arrays, meta)
        self.folder.cut(meta["logs"])
        self.best = dict(meta["best"])
        self.alerts = list(meta["alerts"])
        self.reported = dict(meta["reported"])
        self.watch.load_state(meta["watch"])
        self.elapsed_s = float(meta["elapsed_s"])
        self.say(f"resuming {self.folder.path} after epoch {trainer.epoch} (checkpoint 'last')")
        return trainer

    def _epoch_zero(self, trainer: Trainer) -> None:
        evs = _by_split(trainer.evaluate_epoch())
        for split in ("train", "val", "test"):
            if split in evs:
                self.folder.add_evaluation(evs[split].row, evs[split])
        self._report(trainer, evs[self.selection], best_accuracy=-math.inf)
        if "revive-silent" in self.remedies:
            self._revive(trainer, evs[self.selection])

    # --- the loop ------------------------------------------------------------------------------
    def run(self, trainer: Trainer, position: str = "", should_stop=None) -> dict:
        """Train to the last epoch and finish; :class:`RunStopped` when ``should_stop()``
        turns true (checked after every step)."""
        samples = trainer.n_batches * trainer.batch_size
        while not trainer.finished:
            epoch = trainer.epoch
            bar = tqdm(
                total=samples,
                unit=" samples",
                desc=f"{position}epoch {epoch + 1}/{trainer.epochs}",
                file=sys.stderr,
                # a terminal redraws its line; a log file gets a line every half minute
                mininterval=0.5 if sys.stderr.isatty() else LOG_INTERVAL_S,
                dynamic_ncols=True,
                disable=not self.bars,
            )
            rows: list[MetricRow] = []
            n_before = len(trainer.evaluations)  # the epoch's last step adds its evaluations
            t0 = time.perf_counter()
            while trainer.epoch == epoch:
                row = trainer.step()
                rows.append(row)
                bar.update(trainer.batch_size)
                bar.set_postfix(
                    loss=f"{row.loss:.4g}", acc=f"{100 * row.accuracy:.1f}%", refresh=False
                )
                message = self.watch.add(row.silent_fraction)
                if message:
                    self._alert(epoch, "collapse-steps", message)
                if should_stop is not None and should_stop():
                    bar.close()
                    raise RunStopped(f"stopped in epoch {epoch + 1}")
            bar.close()
            self.elapsed_s += time.perf_counter() - t0
            self.folder.add_steps(rows)
            self._end_epoch(trainer, rows, trainer.evaluations[n_before:])
        return self.finish(trainer)

    def _end_epoch(self, trainer: Trainer, rows: list[MetricRow], fresh: list[Evaluation]) -> None:
        evs = _by_split(fresh)
        if self.selection != "train":  # the mean over the epoch's batches
            acc = sum(r.accuracy for r in rows) / len(rows)
            loss = mean_finite(np.array([r.loss for r in rows], dtype=np.float64))
            self.folder.add_evaluation(
                MetricRow(trainer.step_count, trainer.epoch, "train", loss, acc, rows[-1].lr), None
            )
        for split in ("train", "val", "test"):
            if split in evs:
                self.folder.add_evaluation(evs[split].row, evs[split])
        self.last = evs
        sel = evs[self.selection]
        best_before = self.best["accuracy"]
        bad = self._report(trainer, sel, best_before)
        if not bad:
            self.watch.reset()
        if sel.row.accuracy > best_before:
            self.best = {
                "epoch": trainer.epoch,
                "accuracy": sel.row.accuracy,
                "split": self.selection,
                "test_accuracy": evs["test"].row.accuracy if "test" in evs else None,
            }
            arrays, meta = trainer_state(trainer)
            write_checkpoint(self.folder.checkpoints, "best", arrays, meta)
        if bad and "rollback" in self.remedies and self.best["epoch"] >= 0:
            best = read_checkpoint(self.folder.checkpoints, "best")
            scale = rollback(trainer, *best)
            self.watch.reset()
            self._event(
                trainer.epoch,
                "rollback",
                f"remedy rollback (beyond the paper): weights back to epoch "
                f"{self.best['epoch']}, learning rate × {scale:g} from now on",
            )
        if "revive-silent" in self.remedies:
            self._revive(trainer, sel)
        arrays, meta = trainer_state(trainer)
        meta.update(
            logs=self.folder.sizes(),
            best=self.best,
            alerts=self.alerts,
            reported=self.reported,
            watch=self.watch.state(),
            elapsed_s=self.elapsed_s,
        )
        write_checkpoint(self.folder.checkpoints, "last", arrays, meta)
        line = " ".join(f"{s} {100 * e.row.accuracy:.2f} %" for s, e in evs.items())
        self.say(f"epoch {trainer.epoch}: {line}")

    def _report(self, trainer, ev: Evaluation, best_accuracy: float) -> bool:
        """Print and record the alerts of ``ev``; True if the run collapsed."""
        for kind, message in new_alerts(alerts(ev, best_accuracy), self.reported):
            self._alert(trainer.epoch, kind, message)
        return collapsed(ev, best_accuracy)

    def _revive(self, trainer, ev: Evaluation) -> None:
        bumped = revive_silent(trainer, ev)
        if bumped:
            self._event(
                trainer.epoch,
                "revive-silent",
                f"remedy revive-silent (beyond the paper): raised the weights of silent outputs "
                f"{sorted(bumped)} ({bumped} raises each; -1 = still silent)",
            )

    def _redraw(self, trainer) -> None:
        x, _ = trainer.split_data("train")
        drawn = redraw_silent(
            trainer.network,
            take(x, slice(0, PROBE)),
            trainer.t_max,
            self.config["training"]["seed"],
            trainer.to_backend,
        )
        if drawn:
            self._event(
                0,
                "redraw-silent",
                f"remedy redraw-silent (beyond the paper): output neuron(s) {sorted(drawn)} fired "
                f"on at most {MIN_FIRING:.0%} of the first {PROBE} training samples at "
                f"initialisation; their weights were drawn again ({drawn} draws each; -1 = still "
                "silent)",
            )

    def _alert(self, epoch: int, kind: str, message: str) -> None:
        self.alerts.append(message)
        self._event(epoch, kind, message)

    def _event(self, epoch: int, kind: str, message: str) -> None:
        remedy = kind in ("rollback", "revive-silent", "redraw-silent")
        self.say(("" if remedy else "ALERT ") + message)
        self.folder.add_event(epoch, kind, message)

    # --- the end -------------------------------------------------------------------------------
    def finish(self, trainer: Trainer) -> dict:
        """Save the final and the best model and ``summary.json``; return the summary."""
        path = self.folder.path
        trainer.network.save(path / "model")
        if not self.last:  # resumed after the last epoch: evaluate the final weights again
            self.last = _by_split(trainer.evaluate_epoch())
        last = {s: e.row.accuracy for s, e in self.last.items()}
        best = read_checkpoint(self.folder.checkpoints, "best")
        if best is not None:
            arrays, _ = best
            n = len(trainer.network.weights)  # layers with weights (not pool)
            final = trainer.network.weights
            trainer.network.weights = [arrays[f"w{k}"] for k in range(n)]
            trainer.network.save(path / "best_model")
            trainer.network.weights = final
        summary = {
            "run": str(path),
            "epochs": trainer.epoch,
            "final": last,
            "best": self.best,
            "alerts": len(self.alerts),
            "train_seconds": self.elapsed_s,
        }
        self.folder.write_json("summary.json", summary)
        return summary


def _by_split(evaluations: list[Evaluation]) -> dict[str, Evaluation]:
    return {ev.row.split: ev for ev in evaluations}
