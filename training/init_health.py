"""Output neurons silent at initialisation: a class the untrained network can never predict.

Beyond the paper (issue 11, item 6): with the Fashion-MNIST preset (784-400-400-10, U(−1, 1),
θ = 0.13 / 0.45 / 0.7) some seeds start with output neurons that fire on no training image. A
silent output receives no error under the spike-count loss (docs/losses.md §1), so it may never
learn.
"""

from __future__ import annotations

import numpy as np
from batscope.engine.backend import to_numpy

from .evaluation import EVAL_BATCH, take


def silent_neurons(counts: np.ndarray, max_fraction: float = 0.0) -> tuple[int, ...]:
    """Neurons (axis 1 of ``counts [samples, neurons]``) that fire on at most ``max_fraction``
    of the samples: by default, on none of them."""
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise ValueError(f"counts must be [samples, neurons], got shape {counts.shape}")
    if counts.shape[0] == 0:
        return tuple(range(counts.shape[1]))
    firing = (counts > 0).mean(axis=0)
    return tuple(int(j) for j in np.flatnonzero(firing <= max_fraction))


def layer_counts(network, x, t_max: float, to_backend=lambda b: b) -> list[np.ndarray]:
    """Spike counts ``[samples, neurons]`` of every layer for the inputs ``x`` (in batches)."""
    per_layer: list[list[np.ndarray]] = [[] for _ in network.layers]
    for start in range(0, x.batch_size, EVAL_BATCH):
        outs = network.forward(to_backend(take(x, slice(start, start + EVAL_BATCH))), t_max)
        for k, o in enumerate(outs):
            per_layer[k].append(to_numpy(o.counts))
    return [np.concatenate(c) for c in per_layer]


def dead_at_init(network, x, t_max: float, to_backend=lambda b: b, rare: float = 0.01) -> dict:
    """Silent output neurons, outputs firing on at most ``rare`` of the samples, and the fraction
    of never-firing neurons of each hidden layer."""
    counts = layer_counts(network, x, t_max, to_backend)
    return {
        "silent_outputs": silent_neurons(counts[-1]),
        "rare_outputs": silent_neurons(counts[-1], rare),
        "dead_hidden": tuple(len(silent_neurons(c)) / c.shape[1] for c in counts[:-1]),
    }
