"""The encoded inputs and labels of a task's splits, as the trainer and the views receive them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from batscope.engine.spikes import SpikeTrains


@dataclass(frozen=True)
class TaskData:
    """Encoded inputs and labels of every split (NumPy; moved to the backend by the Trainer)."""

    train: SpikeTrains
    train_labels: np.ndarray
    val: SpikeTrains | None
    val_labels: np.ndarray | None
    test: SpikeTrains | None
    test_labels: np.ndarray | None
    n_classes: int
    t_enc: float
    full_batch: bool
    train_images: np.ndarray | None = None  # the training split's images, for augmentation
    points: np.ndarray | None = None  # [n, 2] plane coordinates of the display set's samples
    class_names: tuple[str, ...] = ()
