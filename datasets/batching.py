"""Seeded mini-batches and a validation split held out from the training set
(docs/training.md §1–§2)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The shuffled order of ``n`` samples for one epoch; a pure function of (seed, epoch)."""
    if n < 0 or seed < 0 or epoch < 0:
        raise ValueError("n, seed and epoch must be >= 0")
    return np.random.default_rng([int(seed), int(epoch)]).permutation(int(n))


def n_batches(n: int, batch_size: int, drop_last: bool = True) -> int:
    """How many batches :func:`batches` yields."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return n // batch_size if drop_last else -(-n // batch_size)


def batches(
    n: int,
    batch_size: int,
    seed: int = 0,
    epoch: int = 0,
    drop_last: bool = True,
    shuffle: bool = True,
) -> Iterator[np.ndarray]:
    """Yield int64 index arrays covering ``range(n)`` in a shuffled order.

    The order depends only on ``(seed, epoch)``, so a run can be resumed mid-training. With
    ``drop_last`` (the paper's setting) the last partial batch is dropped; ``shuffle=False``
    gives the natural order (test sets).
    """
    count = n_batches(n, batch_size, drop_last)
    order = epoch_permutation(n, seed, epoch) if shuffle else np.arange(n)
    order = order.astype(np.int64)
    for i in range(count):
        yield order[i * batch_size : (i + 1) * batch_size]


def train_val_split(n: int, n_val: int, seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(n)`` training indices into ``(train_idx, val_idx)``, both sorted.

    The validation part is taken from the training set, never from the test set. With
    ``seed=None`` it is the last ``n_val`` samples (docs/training.md §2); with a seed, a random
    subset. The two parts are disjoint and together cover ``range(n)``.
    """
    if not (0 <= n_val < n):
        raise ValueError(f"need 0 <= n_val < n, got n_val={n_val}, n={n}")
    if seed is None:
        return np.arange(n - n_val, dtype=np.int64), np.arange(n - n_val, n, dtype=np.int64)
    perm = np.random.default_rng(int(seed)).permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)
