"""The argument checks shared by the CPU and GPU entry points, on either array module ``xp``.

Shapes (docs/model.md §1): pre/post times ``[B, N, S]`` (+inf padded), counts ``[B, N]`` int32,
``group[b]`` in ``[0, G)``. Counts are checked by :func:`spikes.bounded_counts` before the int32
cast, which would wrap large values.
"""

from __future__ import annotations

import numpy as np

from .spikes import bounded_counts


def checked_pre(xp, pre_times, pre_counts, group, n_pre: int, n_groups: int, dt, group_values):
    """Pre trains and groups as contiguous ``xp`` arrays of the right dtypes, shapes checked;
    the values of ``group`` only when ``group_values`` (on the device reading them costs a
    sync)."""
    pre_counts = bounded_counts(pre_times, pre_counts, "pre_")  # the kernels index by them
    pre_times = xp.ascontiguousarray(xp.asarray(pre_times), dtype=dt)
    pre_counts = xp.ascontiguousarray(xp.asarray(pre_counts), dtype=np.int32)
    group = xp.ascontiguousarray(xp.asarray(group), dtype=np.int32)
    if pre_times.ndim != 3 or pre_times.shape[1] != n_pre:
        raise ValueError(
            f"pre_times has shape {pre_times.shape}, expected [B, {n_pre}, K] to match W"
        )
    if pre_counts.shape != pre_times.shape[:2]:
        raise ValueError(f"pre_counts has shape {pre_counts.shape}, expected {pre_times.shape[:2]}")
    if group.shape != (pre_times.shape[0],):
        raise ValueError(f"group must have shape ({pre_times.shape[0]},), got {group.shape}")
    if group_values and group.size and (int(group.min()) < 0 or int(group.max()) >= n_groups):
        raise ValueError(f"group values must lie in [0, {n_groups})")
    return pre_times, pre_counts, group


def checked_post(xp, post_times, post_counts, udot, phi, n_b: int, n_o: int, dt):
    """Post trains, slopes and errors of a backward call as contiguous ``xp`` arrays, shapes
    checked against ``n_b`` samples of ``n_o`` neurons."""
    post_counts = bounded_counts(post_times, post_counts, "post_")
    post_times = xp.ascontiguousarray(xp.asarray(post_times), dtype=dt)
    post_counts = xp.ascontiguousarray(xp.asarray(post_counts), dtype=np.int32)
    udot = xp.ascontiguousarray(xp.asarray(udot), dtype=dt)
    phi = xp.ascontiguousarray(xp.asarray(phi), dtype=dt)
    if post_times.ndim != 3 or post_times.shape[:2] != (n_b, n_o):
        raise ValueError(f"post_times has shape {post_times.shape}, expected [{n_b}, {n_o}, S]")
    if post_counts.shape != (n_b, n_o):
        raise ValueError(f"post_counts has shape {post_counts.shape}, expected {(n_b, n_o)}")
    if udot.shape != post_times.shape:
        raise ValueError(f"udot has shape {udot.shape}, expected {post_times.shape}")
    if phi.shape != post_times.shape:
        raise ValueError(f"phi has shape {phi.shape}, expected {post_times.shape}")
    return post_times, post_counts, udot, phi
