"""A deterministic, instant stand-in for training.trainer.Trainer (controller and session tests)."""

from __future__ import annotations

import threading
import time

import numpy as np
from batscope.training.telemetry import LayerActivity, MetricRow, Snapshot


class FakeTrainer:
    """Counts steps; ``fail_at`` raises on that step; ``delay`` sleeps per step (seconds)."""

    backend = "cpu"

    def __init__(
        self, config: dict, n_batches: int = 2, fail_at: int | None = None, delay: float = 0.0
    ):
        self.config = config
        self.epochs = int(config["training"]["epochs"])
        self.n_batches = n_batches
        self.fail_at = fail_at
        self.delay = delay
        self.step_count = self.epoch = self.batch = 0
        self.seed = int(config["training"]["seed"])
        self.weights = np.random.default_rng(self.seed).uniform(size=3)
        self._pending: list[MetricRow] = []
        self.threads = {threading.current_thread().name}

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs

    @property
    def progress(self) -> float:
        return (self.epoch * self.n_batches + self.batch) / (self.epochs * self.n_batches)

    def step(self) -> MetricRow:
        if self.fail_at is not None and self.step_count == self.fail_at:
            raise FloatingPointError(f"boom at step {self.step_count}")
        if self.delay:
            time.sleep(self.delay)
        row = MetricRow(self.step_count, self.epoch, "train", 1.0 / (1 + self.step_count), 0.5)
        self._pending.append(row)
        self.step_count += 1
        self.batch += 1
        if self.batch == self.n_batches:
            self.batch, self.epoch = 0, self.epoch + 1
        return row

    def snapshot(
        self, sample_index=0, layer=1, neurons=(0,), status="running", elapsed_s=0.0, heavy=False
    ) -> Snapshot:
        rows, self._pending = tuple(self._pending), []
        times = np.array([[0.1 * (self.step_count % 5 + 1)]])
        act = (LayerActivity("input", times, np.array([1])),)
        return Snapshot(
            step=self.step_count,
            epoch=self.epoch,
            batch=self.batch,
            n_batches=self.n_batches,
            epochs=self.epochs,
            status=status,
            elapsed_s=elapsed_s,
            rows=rows,
            sample_index=sample_index,
            activity=act,
            extra={"progress": self.progress, "weights0": float(self.weights[0])},
        )
