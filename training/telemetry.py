"""What a training run reports to viewers: NumPy-only snapshots and a bounded outbox.

Snapshots never hold CuPy arrays or Panel objects: the trainer converts once, here the app reads.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from batscope.engine.analysis import LatencyCurve, LayerSparsity


@dataclass(frozen=True)
class MetricRow:
    """One light row: a training step's (or an evaluation's) loss and accuracy."""

    step: int
    epoch: int
    split: str  # "train" | "val" | "test"
    loss: float
    accuracy: float
    lr: float = float("nan")
    samples_per_s: float = float("nan")
    silent_fraction: float = float("nan")  # samples of the batch with no output spike at all


@dataclass(frozen=True)
class SparsityRow:
    """One layer's sparsity at one measurement, light (no per-neuron array): the sparsity
    history is made of these, kept like metric rows whatever view is shown (docs/training.md §5)."""

    step: int
    epoch: float  # epochs done, with the fraction of the current one
    layer: str
    dead: float  # fractions in [0, 1]; saturated is NaN for the input layer (no buffer)
    active: float
    saturated: float
    spikes: float  # spikes per sample


def sparsity_rows(sparsity, step: int, epoch: float) -> tuple[SparsityRow, ...]:
    """The light rows of one measurement (``LayerSparsity`` s of every layer)."""
    return tuple(
        SparsityRow(
            int(step),
            float(epoch),
            s.name,
            s.dead_fraction,
            s.active_fraction,
            s.saturated_fraction,
            s.spikes_per_sample,
        )
        for s in sparsity
    )


@dataclass(frozen=True)
class LayerActivity:
    """The displayed sample's spikes in one layer (index 0 is the input layer)."""

    name: str
    times: np.ndarray  # [N, K] float, +inf padded
    counts: np.ndarray  # [N] int
    theta: float = float("nan")  # nan for the input layer
    reset: float = float("nan")
    n_max: int = 0
    shape: tuple = ()  # (n,) or (H, W, C) (Network.shapes); () when unknown
    kind: str = ""  # "input", or the layer's kind: "dense" | "conv2d" | "pool2d"


@dataclass(frozen=True)
class ErrorFlow:
    """Per-spike errors of one trainable layer for the displayed sample (docs/backward.md §7)."""

    layer: int  # index into Snapshot.activity (1 = first trainable layer)
    phi: np.ndarray  # [N, K] inter-neuron error
    mu: np.ndarray  # [N, K] intra-neuron (reset) error alpha*beta
    delta: np.ndarray  # [N, K] total error phi + mu


@dataclass(frozen=True)
class MembraneWindow:
    """Exact u(t) of selected neurons of one layer for the displayed sample."""

    layer: int
    neurons: np.ndarray  # [n_sel] int
    t: np.ndarray  # [T]
    u: np.ndarray  # [n_sel, T]
    theta: float
    reset: float
    refused: str = ""  # why no trace was computed (a pool layer has no membrane); "" otherwise


@dataclass(frozen=True)
class PredictionMap:
    """The network's prediction at the 2-D points of a task's displayed samples (Yin-Yang's
    (x, y)): what the prediction scatter draws."""

    xy: np.ndarray  # [n, 2] float
    labels: np.ndarray  # [n] int
    predictions: np.ndarray  # [n] int
    class_names: tuple[str, ...]
    step: int


@dataclass(frozen=True)
class Snapshot:
    """Everything a viewer needs at one moment of a run. Heavy fields may be None."""

    step: int
    epoch: int
    batch: int
    n_batches: int
    epochs: int
    status: str = "running"
    elapsed_s: float = 0.0
    rows: tuple[MetricRow, ...] = ()
    sample_index: int = 0
    label: int = -1
    prediction: int = -1
    t_max: float = 1.0
    activity: tuple[LayerActivity, ...] = ()
    errors: tuple[ErrorFlow, ...] = ()
    membrane: MembraneWindow | None = None
    sparsity: tuple[LayerSparsity, ...] = ()
    latency: LatencyCurve | None = None
    weights: tuple[np.ndarray, ...] | None = None
    evaluations: tuple = ()  # epoch-end Evaluations (training.evaluation) since the last snapshot
    sparsity_rows: tuple[SparsityRow, ...] = ()  # light rows of ``sparsity``, measured at ``step``
    extra: dict = field(default_factory=dict)


class Outbox:
    """Bounded, thread-safe queue of snapshots from the worker to the session.

    Light metric rows, sparsity rows and epoch-end evaluations are never lost (they are carried
    into the next snapshot if the queue is full); heavy fields are coalesced: a reader uses only
    the newest snapshot's heavy parts.
    """

    LIGHT = ("rows", "sparsity_rows", "evaluations")

    def __init__(self, maxlen: int = 64):
        self._lock = threading.Lock()
        self._items: deque[Snapshot] = deque()
        self._maxlen = maxlen
        self._dropped: dict[str, list] = {k: [] for k in self.LIGHT}

    def put(self, snap: Snapshot) -> None:
        with self._lock:
            if len(self._items) >= self._maxlen:
                old = self._items.popleft()
                for k in self.LIGHT:
                    self._dropped[k].extend(getattr(old, k))
            self._items.append(snap)

    def drain(self) -> list[Snapshot]:
        """All queued snapshots, oldest first; rows of coalesced ones go to the first returned."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
            dropped, self._dropped = self._dropped, {k: [] for k in self.LIGHT}
        if any(dropped.values()) and items:
            first = items[0]
            items[0] = Snapshot(
                **{
                    **first.__dict__,
                    **{k: tuple(dropped[k]) + getattr(first, k) for k in self.LIGHT},
                }
            )
        return items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
