"""The training loop (docs/training.md §2) and the snapshots the app displays (no Panel here).

A :class:`Trainer` is built from a JSON-able run configuration (``{"network": {"layers": [...]},
"training": {...}}``, the dict ``batscope.training.state.run_config`` writes). :meth:`Trainer.step`
runs exactly one mini-batch — forward → predict, loss and errors → backward → mean gradient →
optimiser step (docs/training.md §2) — and returns its :class:`MetricRow`; evaluation rows for the
validation and test sets are added at epoch ends. :meth:`Trainer.snapshot` converts everything a
view needs to NumPy once.
"""

from __future__ import annotations

import math
import time

import numpy as np
from batscope import datasets
from batscope.datasets.batching import batches, n_batches, train_val_split
from batscope.datasets.encoding import encode_ttfs
from batscope.datasets.toy import list_toy_tasks, toy_task
from batscope.engine.backend import resolve_backend, to_numpy, xp_for
from batscope.engine.losses import SpikeCountClass, TTFSCrossEntropy
from batscope.engine.network import Network
from batscope.engine.optim import SGD, Adam, LRSchedule
from batscope.engine.spikes import SpikeTrains

from .augmentation import elastic_batch
from .evaluation import EVAL_BATCH, Evaluation, evaluate_split, mean_finite, take
from .eventdata import load_event_data, missing_data
from .netbuild import engine_layers, network_input_shape
from .network_snapshot import (
    decoding_mode,
    last_input_time,
    population_statistics,
    sample_snapshot,
)
from .state import EVENT_TASKS
from .taskdata import TaskData
from .telemetry import MetricRow, PredictionMap, Snapshot, sparsity_rows

IMAGE_TASKS = {"mnist": "mnist", "fashion-mnist": "fashion-mnist", "emnist": "emnist-balanced"}
EVAL_CAP = 1000  # most samples evaluated per split at an epoch end (keeps the UI responsive)
MAP_POINTS = 1000  # displayed samples the prediction scatter shows (Yin-Yang: its test split)


def load_task(
    training: dict, data_dir=None, keep_images: bool = False, download: bool = False
) -> TaskData:
    """Inputs for ``training["task"]``: a toy task (full batch), TTFS-encoded images (and,
    with ``keep_images``, the training split's images, for augmentation) or an event dataset
    (training/eventdata.py; SHD from files in ``data_dir`` or the data folder, unverified).

    MNIST and Fashion-MNIST come from the embedded sample unless ``training["data"]`` is
    "full"; the full sets and EMNIST come from ``datasets.load`` (files in ``data_dir`` or the
    cache; a checked download only with ``download``, else ``FileNotFoundError`` naming them).
    """
    task = training["task"]
    if task in EVENT_TASKS:
        missing = missing_data(task, data_dir)
        if missing:  # as for EMNIST: the message names the files and where they go
            raise FileNotFoundError(missing)
        # the app reads SHD from the server's data folder: no checksum is pinned to verify
        return load_event_data({"training": training, "run": {"verify": False}}, data_dir)
    if task in list_toy_tasks():
        t = toy_task(task)
        x = t.inputs.numpy()
        # the "encoding window" of a toy task ends with its last input spike
        t_in = last_input_time(x, t.t_max)
        return TaskData(x, np.asarray(t.labels), None, None, None, None, t.n_classes, t_in, True)
    if task not in IMAGE_TASKS:
        raise ValueError(f"task must be a toy task or one of {sorted(IMAGE_TASKS)}, got {task!r}")
    if task == "emnist" or training.get("data") == "full":
        x_tr, y_tr = datasets.load(IMAGE_TASKS[task], "train", data_dir, download=download)
        x_te, y_te = datasets.load(IMAGE_TASKS[task], "test", data_dir, download=download)
        n_classes = 47 if task == "emnist" else 10
    else:
        x_tr, y_tr = datasets.load_sample(task, "train")
        x_te, y_te = datasets.load_sample(task, "test")
        n_classes = 10
    n = min(int(training.get("n_train", len(x_tr))), len(x_tr))
    n_val = int(round(n * float(training.get("val_fraction", 0.0))))
    tr_idx, val_idx = train_val_split(n, n_val) if n_val else (np.arange(n), None)
    t_enc, dtype = float(training["t_enc"]), training.get("dtype", "float64")
    enc = encode_ttfs(x_tr[:n], t_enc, dtype=dtype)
    n_test = min(len(x_te), EVAL_CAP)
    return TaskData(
        take(enc, tr_idx),
        np.asarray(y_tr[:n][tr_idx]),
        take(enc, val_idx) if val_idx is not None else None,
        np.asarray(y_tr[:n][val_idx]) if val_idx is not None else None,
        encode_ttfs(x_te[:n_test], t_enc, dtype=dtype),
        np.asarray(y_te[:n_test]),
        n_classes,
        t_enc,
        False,
        np.asarray(x_tr[:n][tr_idx]) if keep_images else None,
    )


def build_network(config: dict, n_inputs: int) -> Network:
    """The engine Network of a run configuration (weights drawn from ``training.seed``); an
    image network with conv / pool layers is built on the task's (28, 28, 1) input."""
    tr = config["training"]
    layers = engine_layers(config["network"])
    return Network(
        input_shape=network_input_shape(config, n_inputs),
        layers=layers,
        backend=resolve_backend(tr.get("backend", "cpu")),
        dtype=tr.get("dtype", "float64"),
        seed=int(tr.get("seed", 0)),
    )


def build_loss(training: dict):
    if training["loss"] == "ttfs_ce":
        return TTFSCrossEntropy(float(training["tau_l"]))
    return SpikeCountClass(float(training["y_true"]), float(training["y_false"]))


class Trainer:
    """One training run: network, loss, optimiser, schedule, data and counters."""

    def __init__(
        self, config: dict, data: TaskData | None = None, data_dir=None, download: bool = False
    ):
        self.config = config
        tr = config["training"]
        self.data = data if data is not None else load_task(tr, data_dir, download=download)
        self.network = build_network(config, self.data.train.n_neurons)
        if self.network.sizes[-1] != self.data.n_classes:
            raise ValueError(
                f"the output layer has {self.network.sizes[-1]} neurons but the "
                f"task has {self.data.n_classes} classes"
            )
        self.backend = resolve_backend(tr.get("backend", "cpu"))
        self.xp = xp_for(self.backend)
        self.loss = build_loss(tr)
        self.predict_mode = tr.get("predict", "reference")
        self.t_max = float(tr["t_max"])
        self.base_lr = float(tr["lr"])
        self.optimizer = Adam(self.base_lr) if tr["optimizer"] == "adam" else SGD(self.base_lr)
        self.schedule = LRSchedule(
            float(tr.get("lr_decay", 1.0)),
            int(tr.get("lr_every", 10)),
            float(tr.get("lr_floor", 0.0)),
        )
        self.epochs = int(tr["epochs"])
        self.seed = int(tr.get("seed", 0))
        n = self.data.train.batch_size
        self.batch_size = n if self.data.full_batch else min(int(tr["batch_size"]), n)
        self.n_batches = n_batches(n, self.batch_size)
        self.augment = config.get("run", {}).get("augment")
        if self.augment is not None and self.data.train_images is None:
            raise ValueError(f"run.augment {self.augment!r} needs the training images")
        self._train = self.to_backend(self.data.train)
        self._train_labels = self.xp.asarray(self.data.train_labels)
        self.step_count = self.epoch = self.batch = 0
        self.lr_scale = 1.0  # a rollback remedy lowers it (training.remedies); 1 in the paper
        self._order: list[np.ndarray] = []
        self.history: list[MetricRow] = []
        self.evaluations: list[Evaluation] = []
        self._pending: list[MetricRow] = []
        self._pending_evaluations: list[Evaluation] = []

    def to_backend(self, x: SpikeTrains) -> SpikeTrains:
        xp = self.xp
        dt = np.dtype(self.config["training"].get("dtype", "float64"))
        return SpikeTrains(xp.asarray(x.times, dtype=dt), xp.asarray(x.counts))

    @property
    def finished(self) -> bool:
        return self.epoch >= self.epochs

    @property
    def progress(self) -> float:
        return min(1.0, (self.epoch * self.n_batches + self.batch) / (self.epochs * self.n_batches))

    def step(self) -> MetricRow:
        """Train on exactly one batch (docs/training.md §2 step); evaluate at the epoch's end."""
        if self.finished:
            raise RuntimeError("training is finished; reset to train again")
        t0 = time.perf_counter()
        if self.batch == 0:
            self._order = list(
                batches(self.data.train.batch_size, self.batch_size, self.seed, self.epoch)
            )
            self.optimizer.lr = self.schedule.lr(self.base_lr, self.epoch) * self.lr_scale
        idx = self.xp.asarray(self._order[self.batch])
        inp, labels = self._batch_inputs(self._order[self.batch]), self._train_labels[idx]
        out = self.network.forward(inp, self.t_max)[-1]
        loss, errors = self.loss.loss_and_errors(out, labels)
        pred = self.loss.predict(out, self.predict_mode)
        grads = self.network.backward(errors)
        b = len(idx)
        grads = [g / g.dtype.type(b) for g in grads]  # backward sums over the batch
        weights = self.network.weights
        self.optimizer.step(weights, grads)
        self.network.weights = weights
        acc = float(to_numpy((pred == labels).mean()))
        silent = float(to_numpy((out.counts.sum(axis=1) == 0).mean()))
        dt = time.perf_counter() - t0
        row = MetricRow(
            self.step_count,
            self.epoch,
            "train",
            mean_finite(to_numpy(loss)),
            acc,
            self.optimizer.lr,
            b / dt if dt > 0 else math.nan,
            silent,
        )
        self._record(row)
        self.step_count += 1
        self.batch += 1
        if self.batch == self.n_batches:
            self.batch = 0
            self.epoch += 1
            self.evaluate_epoch()
        return row

    def _batch_inputs(self, order: np.ndarray) -> SpikeTrains:
        """The training batch ``order``: encoded once, or distorted afresh this epoch."""
        if self.augment is None:
            return take(self._train, self.xp.asarray(order))
        tr = self.config["training"]
        x = elastic_batch(
            self.data.train_images, order, self.seed, self.epoch, self.data.t_enc, tr["dtype"]
        )
        return self.to_backend(x)

    def evaluate_epoch(self) -> list[Evaluation]:
        """Evaluate the splits now (at an epoch end) and keep the evaluations.

        Validation and test rows join the metric history; without a validation split the
        training set is evaluated too (the split runs are selected on), kept among the
        evaluations but not in the history, whose train rows are the training batches'."""
        splits = ("val", "test") if self.data.val is not None else ("train", "test")
        done = []
        for split in splits:
            ev = self.evaluate(split)
            if ev is None:
                continue
            if split != "train":
                self._record(ev.row)
            self.evaluations.append(ev)
            self._pending_evaluations.append(ev)
            done.append(ev)
        return done

    def _record(self, row: MetricRow) -> None:
        self.history.append(row)
        self._pending.append(row)

    def split_data(self, split: str):
        d = self.data
        return {
            "train": (d.train, d.train_labels),
            "val": (d.val, d.val_labels),
            "test": (d.test, d.test_labels),
        }[split]

    def evaluate(self, split: str) -> Evaluation | None:
        """Loss, accuracy, sparsity, latency and health over a split (None if there is none)."""
        x, y = self.split_data(split)
        if x is None:
            return None
        return evaluate_split(
            self.network,
            self.loss,
            x,
            y,
            split=split,
            step=self.step_count,
            epoch=self.epoch,
            lr=self.optimizer.lr,
            t_max=self.t_max,
            t_enc=self.data.t_enc,
            predict_mode=self.predict_mode,
            to_backend=self.to_backend,
            xp=self.xp,
        )

    def display_set(self) -> tuple[SpikeTrains, np.ndarray]:
        """The samples the views show: the test set for images, the patterns for toy tasks."""
        d = self.data
        return (d.train, d.train_labels) if d.test is None else (d.test, d.test_labels)

    def snapshot(
        self,
        sample_index: int = 0,
        layer: int = 1,
        neurons=(0,),
        status="running",
        elapsed_s: float = 0.0,
        heavy: bool = False,
    ) -> Snapshot:
        """A NumPy-only Snapshot of the displayed sample (and, if ``heavy``, the population
        statistics and the weights)."""
        x, y = self.display_set()
        sparsity, latency = self._population() if heavy else ((), None)
        mapped = heavy and self.data.points is not None
        rows, self._pending = tuple(self._pending), []
        evaluations, self._pending_evaluations = tuple(self._pending_evaluations), []
        return sample_snapshot(
            self.network,
            x,
            y,
            self.loss,
            self.t_max,
            int(sample_index) % x.batch_size,
            layer,
            neurons,
            self.predict_mode,
            step=self.step_count,
            epoch=self.epoch,
            batch=self.batch,
            n_batches=self.n_batches,
            epochs=self.epochs,
            status=status,
            elapsed_s=elapsed_s,
            rows=rows,
            sparsity=sparsity,
            latency=latency,
            # copies: the optimiser updates the live arrays in place while views read this
            weights=tuple(np.array(to_numpy(w)) for w in self.network.weights) if heavy else None,
            evaluations=evaluations,
            sparsity_rows=sparsity_rows(
                sparsity, self.step_count, self.epoch + self.batch / max(self.n_batches, 1)
            ),
            extra={
                "progress": self.progress,
                "lr": self.optimizer.lr,
                "t_enc": self.data.t_enc,
                **({"prediction_map": self.prediction_map()} if mapped else {}),
            },
        )

    def prediction_map(self) -> PredictionMap:
        """The prediction at the plane points of (at most ``MAP_POINTS``) displayed samples."""
        x, y = self.display_set()
        n = min(MAP_POINTS, x.batch_size, len(self.data.points))
        predictions = []
        for start in range(0, n, EVAL_BATCH):
            batch = self.to_backend(take(x, slice(start, min(start + EVAL_BATCH, n))))
            out = self.network.forward(batch, self.t_max)[-1]
            predictions.append(to_numpy(self.loss.predict(out, self.predict_mode)))
        return PredictionMap(
            np.asarray(self.data.points[:n], dtype=np.float64),
            np.asarray(y[:n]),
            np.concatenate(predictions).astype(np.int64),
            self.data.class_names,
            self.step_count,
        )

    def _population(self):
        """Sparsity of every layer and the latency curve over one evaluation batch
        (docs/training.md §5)."""
        x, y = self.display_set()
        n = min(EVAL_BATCH, x.batch_size)
        return population_statistics(
            self.network,
            take(x, slice(0, n)),
            y[:n],
            self.t_max,
            self.data.t_enc,
            decoding_mode(self.loss),
            self.predict_mode,
        )
