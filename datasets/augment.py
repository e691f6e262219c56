"""Random elastic distortion, as used for the paper's convolutional MNIST runs
(docs/training.md §1).

The reference calls ``elasticdeform.deform_random_grid(x, sigma=1.0, points=2, order=0)``: a
``points x points`` grid of control-point displacements drawn from N(0, sigma^2) pixels per axis,
interpolated over the image, then nearest-neighbour resampling with zeros outside. This is a
NumPy-only equivalent: control points sit on the image corners/edges (``linspace(0, H-1,
points)``) and the displacement field is interpolated **bilinearly** (``elasticdeform`` uses a
cubic B-spline; with ``points=2`` both give a smooth, nearly affine field).
"""

from __future__ import annotations

import numpy as np


def _hat_weights(size: int, points: int) -> np.ndarray:
    """``[size, points]`` linear-interpolation weights of ``points`` evenly spaced nodes."""
    if size == 1:
        w = np.zeros((1, points))
        w[0, 0] = 1.0
        return w
    u = np.arange(size) * (points - 1) / (size - 1)  # pixel position in node units
    return np.maximum(0.0, 1.0 - np.abs(u[:, None] - np.arange(points)[None, :]))


def elastic_distort(
    images,
    sigma: float = 1.0,
    points: int = 2,
    seed: int | np.random.Generator | None = 0,
    cval: float = 0,
) -> np.ndarray:
    """Distort each image with its own random displacement field; same shape and dtype.

    ``images``: ``[H, W]``, ``[B, H, W]`` or ``[B, H, W, C]`` (channels share the field).
    ``seed`` (int or ``numpy.random.Generator``) makes the result reproducible. Samples that fall
    outside the image take ``cval``.
    """
    x = np.asarray(images)
    single = x.ndim == 2
    if single:
        x = x[None]
    if x.ndim not in (3, 4):
        raise ValueError(f"images must be [H, W], [B, H, W] or [B, H, W, C], got {x.shape}")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    b, h, w = x.shape[:3]
    grid = rng.standard_normal((b, 2, points, points)) * sigma
    wr, wc = _hat_weights(h, points), _hat_weights(w, points)
    disp = np.einsum("hp,bapq,wq->bahw", wr, grid, wc)  # [B, 2, H, W] in pixels
    rows = np.arange(h)[None, :, None] + disp[:, 0]
    cols = np.arange(w)[None, None, :] + disp[:, 1]
    ri = np.floor(rows + 0.5).astype(np.int64)
    ci = np.floor(cols + 0.5).astype(np.int64)
    inside = (ri >= 0) & (ri < h) & (ci >= 0) & (ci < w)
    bi = np.broadcast_to(np.arange(b)[:, None, None], ri.shape)
    out = x[bi, np.clip(ri, 0, h - 1), np.clip(ci, 0, w - 1)]
    mask = inside if x.ndim == 3 else inside[..., None]
    out = np.where(mask, out, np.asarray(cval, dtype=x.dtype)).astype(x.dtype, copy=False)
    return out[0] if single else out
