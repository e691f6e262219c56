"""The app's convergence sweep (paper Fig. 3) computed on a Dask cluster (docs/training.md §4).

When ``BATSCOPE_DASK_SCHEDULER`` names a scheduler, :func:`runner_from_env` gives the app's
:class:`~.sweep.SweepController` a :class:`ClusterSweepRunner` in place of
``engine.convergence.run_sweep``: the same signature and the same numbers (each run's weights come
from its own seed), but every chunk of cells is a task on the cluster, and cells are handed to
the controller as tasks finish. The controller keeps its slot and memory reservation while the
sweep runs, so a participant's remote sweep counts against the same budgets as a local one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
from batscope.engine import convergence

SCHEDULER_ENV = "BATSCOPE_DASK_SCHEDULER"


class ClusterSweepRunner:
    """``run_sweep(cfg, chunk_cells, callback, should_stop)`` with the chunks on ``address``."""

    def __init__(self, address: str):
        self.address = address
        self.dashboard_link = ""

    def __call__(
        self,
        cfg: convergence.SweepConfig,
        chunk_cells: int | None = None,
        callback: Callable[[np.ndarray, np.ndarray], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> convergence.SweepResult:
        from distributed import Client, as_completed

        n_std, n_mean = cfg.shape
        res = convergence.SweepResult.empty(cfg)
        start = time.perf_counter()
        with Client(self.address, set_as_default=False) as client:
            self.dashboard_link = client.dashboard_link
            chunks = convergence.grid_chunks(cfg, chunk_cells or n_std * n_mean)
            futures = {
                client.submit(convergence.train_cells, cfg, cells, pure=False): cells
                for cells in chunks
            }
            pending = set(futures)
            try:
                for fut in as_completed(list(futures), loop=client.loop):
                    pending.discard(fut)
                    if should_stop is not None and should_stop():
                        break
                    best, first_full = fut.result()
                    cells = futures[fut]
                    accuracy = res.record(cells, best, first_full, time.perf_counter() - start)
                    if callback is not None:
                        callback(cells, accuracy)
            finally:
                if pending:  # stopped, or an error: nothing keeps running for this sweep
                    client.cancel(list(pending), force=True)
        return res


def runner_from_env() -> ClusterSweepRunner | None:
    """A runner on the scheduler named by ``BATSCOPE_DASK_SCHEDULER``, else None (in process)."""
    address = os.environ.get(SCHEDULER_ENV, "").strip()
    return ClusterSweepRunner(address) if address else None
