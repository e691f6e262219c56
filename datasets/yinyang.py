"""The Yin-Yang benchmark (Kriener et al. 2021), generated from its published rule.

Geometry, with ``R = 0.5`` (the big circle) and ``r = 0.1`` (the dots): a point ``(x, y)`` is
drawn uniformly in the square ``[0, 2R]²`` and kept only if it lies in the big circle of centre
``(R, R)``. Two centres sit on the horizontal diameter, ``c_left = (R/2, R)`` and
``c_right = (3R/2, R)``:

* **dot** (label 2): within ``r`` of ``c_left`` or of ``c_right``;
* **yin** (label 1): otherwise, within ``R/2`` of ``c_left``, or in the upper half (``y > R``)
  and farther than ``R/2`` from ``c_right`` (the upper half with the S-curve's bulges);
* **yang** (label 0): the rest of the big circle.

The symbol is symmetric under a half turn about ``(R, R)``, which swaps yin and yang, so their
areas are equal: ``π(R² − 2r²)/2`` each, and ``2πr²`` for the dots. Classes are balanced by
rejection, as published: each sample first draws its class uniformly from {0, 1, 2}, then points
are drawn until one falls in that class (here vectorised: the samples of a class take the drawn
points of that class in order, which has the same distribution; the numbers differ from the
authors' reference code, which is not used). Features are ``(x, y, 1 − x, 1 − y)``, so every
input carries information whichever end of its range it sits at.

The standard splits are 5 000 train, 1 000 validation and 1 000 test samples, each drawn with its
own fixed seed (``SPLIT_SEEDS``), so the three sets are independent draws.

Spike encoding (:func:`encode_yinyang`), as in the exact-timing literature: feature ``v`` in
[0, 1] fires once at ``t = t_early + v·(t_late − t_early)`` and a fifth input, the bias, fires at
``t_bias`` for every sample (it gives the first layer a reference time that does not depend on
the data). The encoding is deterministic; all randomness is in the seeded generator.
"""

from __future__ import annotations

import numpy as np
from batscope.engine.spikes import SpikeTrains

R_BIG = 0.5
R_SMALL = 0.1
SPLIT_SIZES = {"train": 5000, "val": 1000, "test": 1000}
SPLIT_SEEDS = {"train": 42, "val": 41, "test": 40}
CLASS_NAMES = ("yang", "yin", "dot")
N_CLASSES = 3
N_FEATURES = 4
# Encoding defaults, seconds: inputs within [T_EARLY, T_LATE], the bias in the middle.
T_EARLY = 0.0
T_LATE = 0.02
T_BIAS = 0.01


def yinyang_class(x, y, r_big: float = R_BIG, r_small: float = R_SMALL) -> np.ndarray:
    """Label (0 yang, 1 yin, 2 dot) of points inside the big circle (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    d_left = np.hypot(x - 0.5 * r_big, y - r_big)
    d_right = np.hypot(x - 1.5 * r_big, y - r_big)
    dot = (d_left < r_small) | (d_right < r_small)
    yin = (d_left <= 0.5 * r_big) | ((y > r_big) & (d_right > 0.5 * r_big))
    return np.where(dot, 2, np.where(yin, 1, 0)).astype(np.int64)


def class_areas(r_big: float = R_BIG, r_small: float = R_SMALL) -> np.ndarray:
    """Analytic areas of yang, yin and the dots."""
    dots = 2.0 * np.pi * r_small**2
    half = (np.pi * r_big**2 - dots) / 2.0
    return np.array([half, half, dots])


def _candidates(rng: np.random.Generator, n: int, r_big: float) -> np.ndarray:
    """``n`` points drawn uniformly in the square, those outside the big circle dropped."""
    p = rng.uniform(0.0, 2.0 * r_big, size=(n, 2))
    keep = np.hypot(p[:, 0] - r_big, p[:, 1] - r_big) <= r_big
    return p[keep]


def generate_yinyang(
    n: int, seed: int, r_big: float = R_BIG, r_small: float = R_SMALL
) -> tuple[np.ndarray, np.ndarray]:
    """``(features float64 [n, 4], labels int64 [n])``, class-balanced, from ``seed``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not (0 < r_small < r_big / 2):
        raise ValueError(f"need 0 < r_small < r_big/2, got r_small={r_small}, r_big={r_big}")
    rng = np.random.default_rng(int(seed))
    labels = rng.integers(0, N_CLASSES, size=n).astype(np.int64)
    need = np.bincount(labels, minlength=N_CLASSES)
    pools = [np.zeros((0, 2)) for _ in range(N_CLASSES)]
    while any(len(p) < k for p, k in zip(pools, need, strict=True)):
        pts = _candidates(rng, max(1024, 4 * int(need.max())), r_big)
        cls = yinyang_class(pts[:, 0], pts[:, 1], r_big, r_small)
        pools = [np.concatenate([pools[c], pts[cls == c]]) for c in range(N_CLASSES)]
    xy = np.zeros((n, 2))
    for c in range(N_CLASSES):
        xy[labels == c] = pools[c][: need[c]]
    x, y = xy[:, 0], xy[:, 1]
    features = np.stack([x, y, 2 * r_big - x, 2 * r_big - y], axis=1)
    return features, labels


def load_yinyang(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The standard split ``"train"`` (5 000), ``"val"`` (1 000) or ``"test"`` (1 000)."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"yin-yang split must be one of {tuple(SPLIT_SIZES)}, got {split!r}")
    return generate_yinyang(SPLIT_SIZES[split], SPLIT_SEEDS[split])


def encode_yinyang(
    features,
    t_early: float = T_EARLY,
    t_late: float = T_LATE,
    t_bias: float | None = T_BIAS,
    dtype="float64",
) -> SpikeTrains:
    """One spike per feature at ``t_early + v·(t_late − t_early)``, plus the bias input.

    ``features`` is ``[n, 4]`` with values in [0, 1]; the result has 5 inputs (4 without the
    bias, ``t_bias=None``) and one slot each.
    """
    f = np.asarray(features)
    if f.dtype.kind not in "fiu":
        raise TypeError(f"features must be numeric, got dtype {f.dtype}")
    f = f.astype(np.float64)
    if f.ndim != 2 or f.shape[1] != N_FEATURES:
        raise ValueError(f"features must have shape [n, {N_FEATURES}], got {f.shape}")
    if f.size and not (np.isfinite(f).all() and f.min() >= 0 and f.max() <= 1):
        raise ValueError("features must lie in [0, 1]")
    for name, v in (("t_early", t_early), ("t_late", t_late)):
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite time >= 0, got {v}")
    if not t_late > t_early:
        raise ValueError(f"t_late ({t_late}) must be > t_early ({t_early})")
    times = t_early + f * (t_late - t_early)
    if t_bias is not None:
        if not (np.isfinite(t_bias) and t_bias >= 0):
            raise ValueError(f"t_bias must be a finite time >= 0, got {t_bias}")
        times = np.concatenate([times, np.full((len(f), 1), float(t_bias))], axis=1)
    return SpikeTrains.from_arrays(times[..., None], dtype=dtype)
