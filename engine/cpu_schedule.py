"""How the parallel CPU kernels split their tasks between threads (docs/implementation.md §5).

Numba's ``prange`` hands each thread one contiguous share of the range. A kernel whose tasks
differ in cost (a sample with more spikes, a receptive field with more inputs) then leaves one
thread idle while the other finishes. The kernels therefore run ``prange(n_workers)`` with
one worker per thread, each worker taking its own list of tasks and allocating its work arrays
once: many small tasks are dealt out in turn (task p to worker p mod n_workers), a few large
ones by estimated cost. Every task computes its own outputs with the same arithmetic wherever
it runs, so results do not depend on the number of threads or on this split.
"""

from __future__ import annotations

import numba
import numpy as np

MANY_TASKS = 64  # tasks per worker beyond which balanced_tasks deals contiguous shares


def worker_count() -> int:
    """One worker per Numba thread."""
    return max(1, int(numba.get_num_threads()))


def balanced_tasks(costs: np.ndarray, n_workers: int) -> tuple[np.ndarray, np.ndarray]:
    """Tasks ``0 .. len(costs) - 1`` dealt to ``n_workers`` workers by estimated cost, largest
    first, each to the worker with the least work so far: ``(tasks, starts)``, worker w taking
    ``tasks[starts[w]:starts[w + 1]]`` in increasing order. Beyond ``MANY_TASKS`` per worker
    (thousands of tiny runs of a convergence sweep) each takes an equal contiguous share, as
    ``prange`` would: costs even out, and neighbouring tasks' outputs stay on one thread."""
    costs = np.asarray(costs, dtype=np.float64)
    if costs.size > MANY_TASKS * n_workers:
        tasks = np.arange(costs.size, dtype=np.int64)
        return tasks, (np.arange(n_workers + 1, dtype=np.int64) * costs.size) // n_workers
    load = [0.0] * n_workers
    owner = [0] * costs.size
    for task, cost in sorted(enumerate(costs.tolist()), key=lambda tc: -tc[1]):
        w = load.index(min(load))
        owner[task] = w
        load[w] += cost
    owner = np.asarray(owner, dtype=np.int64)
    tasks = np.argsort(owner, kind="stable").astype(np.int64)
    starts = np.searchsorted(owner[tasks], np.arange(n_workers + 1)).astype(np.int64)
    return tasks, starts
