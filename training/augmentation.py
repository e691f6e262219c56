"""Elastic augmentation of training batches, as in the paper's conv MNIST runs
(docs/training.md §1).

Each training image is distorted afresh every epoch (datasets/augment.py ``elastic_distort``,
σ = 1 pixel, a 2×2 control grid) and then TTFS-encoded. The distortion of image ``i`` in epoch
``e`` is drawn from its own generator seeded by ``(seed, e, i)``, so it does not depend on the
batch it falls in or on what ran before: a run resumed from a checkpoint sees the very same
images as an uninterrupted one.
"""

from __future__ import annotations

import numpy as np
from batscope.datasets.augment import elastic_distort
from batscope.datasets.encoding import encode_ttfs

AUGMENTATIONS = ("elastic",)
ELASTIC_SIGMA = 1.0  # control-point displacement σ [pixels] (docs/training.md §1)
ELASTIC_POINTS = 2  # control grid points per axis


def elastic_batch(images, indices, seed: int, epoch: int, t_enc: float, dtype):
    """TTFS spike trains of ``images[indices]``, each distorted by its (seed, epoch, index)
    generator."""
    distorted = np.stack(
        [
            elastic_distort(
                images[int(i)],
                sigma=ELASTIC_SIGMA,
                points=ELASTIC_POINTS,
                seed=np.random.default_rng((int(seed), int(epoch), int(i))),
            )
            for i in indices
        ]
    )
    return encode_ttfs(distorted, t_enc, dtype=dtype)
