"""An evaluation of a split at an epoch end: loss, accuracy, sparsity, latency and health.

Computed for every evaluation whether or not a view shows it, so a run's record is complete: the
app's sparsity and latency history and the command line's collapse alerts read the same numbers.
Health (batscope's, beyond the paper): output neurons silent on every sample (their class can
never be predicted), samples on which the whole output layer is silent (no error reaches the
network through them, docs/losses.md §3) and hidden neurons silent on every sample (dead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from batscope.engine.analysis import LatencyCurve, LayerSparsity, latency_curve, layer_sparsity
from batscope.engine.backend import to_numpy
from batscope.engine.spikes import SpikeTrains

from .network_snapshot import decoding_mode
from .telemetry import MetricRow

EVAL_BATCH = 100  # test batch of the paper's FC experiments (docs/training.md §1)
LATENCY_POINTS = 101


@dataclass(frozen=True)
class Health:
    """Signs of a run that cannot learn any more (all fractions in [0, 1])."""

    silent_outputs: tuple[int, ...]  # output neurons silent on every sample of the split
    silent_sample_fraction: float  # samples with no output spike at all
    dead_fraction: tuple[float, ...]  # per hidden layer: neurons silent on every sample

    def to_dict(self) -> dict:
        return {
            "silent_outputs": list(self.silent_outputs),
            "silent_sample_fraction": self.silent_sample_fraction,
            "dead_fraction": list(self.dead_fraction),
        }


@dataclass(frozen=True)
class Evaluation:
    """One split evaluated at one epoch end."""

    row: MetricRow
    sparsity: tuple[LayerSparsity, ...]
    latency: LatencyCurve
    health: Health


def take(x: SpikeTrains, sl) -> SpikeTrains:
    return SpikeTrains(x.times[sl], x.counts[sl])


def mean_finite(x: np.ndarray) -> float:
    """Mean of the finite losses (TTFS gives +inf for a silent label, docs/losses.md §3)."""
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else math.nan


def evaluate_split(
    network,
    loss,
    x: SpikeTrains,
    y: np.ndarray,
    *,
    split: str,
    step: int,
    epoch: int,
    lr: float,
    t_max: float,
    t_enc: float,
    predict_mode: str,
    to_backend,
    xp,
) -> Evaluation:
    """Forward the whole split in batches of :data:`EVAL_BATCH` and summarise it.

    ``to_backend`` moves a NumPy ``SpikeTrains`` batch to the network's backend and dtype;
    ``xp`` is that backend's array module.
    """
    losses, correct = [], 0
    counts: list[list[np.ndarray]] = [[] for _ in range(len(network.layers) + 1)]
    out_times = []
    for start in range(0, x.batch_size, EVAL_BATCH):
        sl = slice(start, start + EVAL_BATCH)
        batch = take(x, sl)
        outs = network.forward(to_backend(batch), t_max)
        lab = xp.asarray(y[sl])
        losses.append(to_numpy(loss.loss(outs[-1], lab)))
        correct += int(to_numpy((loss.predict(outs[-1], predict_mode) == lab).sum()))
        counts[0].append(np.asarray(batch.counts))
        for k, o in enumerate(outs):
            counts[k + 1].append(to_numpy(o.counts))
        out_times.append(to_numpy(outs[-1].times))
    counts_all = [np.concatenate(c) for c in counts]
    names = ["input"] + [f"layer {k + 1}" for k in range(len(network.layers))]
    # the input has no spike buffer (never "saturated"); a pool's is size²·K_in
    n_max = [None] + [int(o.n_slots) for o in outs]
    sparsity = tuple(
        layer_sparsity(n, c, m) for n, c, m in zip(names, counts_all, n_max, strict=True)
    )
    out_counts = counts_all[-1]
    mode = decoding_mode(loss)
    latency = latency_curve(
        np.concatenate(out_times),
        out_counts,
        np.asarray(y),
        np.linspace(0.0, t_max, LATENCY_POINTS),
        mode=mode,
        t_enc=t_enc,
        tie_mode=predict_mode,
        label=f"{split}, epoch {epoch}",
    )
    health = Health(
        silent_outputs=tuple(int(j) for j in np.flatnonzero(out_counts.max(axis=0) == 0)),
        silent_sample_fraction=float((out_counts.sum(axis=1) == 0).mean()),
        dead_fraction=tuple(s.dead_fraction for s in sparsity[1:-1]),
    )
    row = MetricRow(
        step, epoch, split, mean_finite(np.concatenate(losses)), correct / x.batch_size, lr
    )
    return Evaluation(row, sparsity, latency, health)
