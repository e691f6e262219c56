"""The app's sweeps on the server's Dask cluster: where they may run, and the Fig. 3 runner.

The scheduler is a server setting (``BATSCOPE_DASK_SCHEDULER``, which ``batscope serve
--dask-scheduler ADDRESS`` sets), never taken from a browser. Each session has a
:class:`ClusterChoice`: "use cluster" is on by default where the server knows a scheduler and Dask
is installed, and off, with a note saying why, where it does not. Both the Convergence tab's
:class:`~.sweep.SweepController` and the sweep panel's :class:`~.grid_sweep.GridSweepController`
read it when a sweep starts, and keep their training slot and memory reservation while the sweep
runs on the cluster, so a participant's remote sweep counts against the same budgets as a local
one.

:class:`ClusterSweepRunner` stands in for ``engine.convergence.run_sweep`` (docs/training.md §4):
the same signature and the same numbers (each run's weights come from its own seed), but every
chunk of cells is a task on the cluster, and cells are handed to the controller as tasks finish.
A dashboard link reaches a page only through :func:`dashboard_href` (http or https, else none).
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from urllib.parse import urlparse

import numpy as np
import param
from batscope.engine import convergence

SCHEDULER_ENV = "BATSCOPE_DASK_SCHEDULER"
CONNECT_TIMEOUT_S = 10


def scheduler_address() -> str:
    """The server's Dask scheduler (``BATSCOPE_DASK_SCHEDULER``), "" when none is set."""
    return os.environ.get(SCHEDULER_ENV, "").strip()


def dask_installed() -> bool:
    return importlib.util.find_spec("distributed") is not None


def dashboard_href(link) -> str:
    """``link`` if it is an http(s) URL with a host (a Dask dashboard), else ""."""
    if not isinstance(link, str) or len(link) > 2000:
        return ""
    url = urlparse(link)
    return link if url.scheme in ("http", "https") and url.hostname else ""


def open_scheduler(address: str):
    """A ``distributed.Client`` of ``address`` (ValueError when Dask is missing)."""
    try:
        from distributed import Client
    except ImportError:
        from .sweep_cluster import INSTALL_CLUSTER

        raise ValueError(INSTALL_CLUSTER) from None
    return Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT_S)


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
        from distributed import as_completed

        n_std, n_mean = cfg.shape
        res = convergence.SweepResult.empty(cfg)
        start = time.perf_counter()
        with open_scheduler(self.address) as client:
            self.dashboard_link = dashboard_href(client.dashboard_link)
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


class ClusterChoice(param.Parameterized):
    """Whether a session's sweeps run on the server's Dask cluster (no Panel).

    ``address`` is the server's scheduler (by default ``BATSCOPE_DASK_SCHEDULER``); a session can
    only switch ``use_cluster``, and :attr:`on_cluster` is true only where a scheduler is
    configured and Dask is installed, whatever ``use_cluster`` says.
    """

    use_cluster = param.Boolean(False, doc="Run sweeps on the server's Dask cluster")

    def __init__(self, address: str | None = None, **params):
        super().__init__(**params)
        self.address = scheduler_address() if address is None else address.strip()
        self.installed = dask_installed()
        self.available = bool(self.address) and self.installed
        self.use_cluster = self.available  # on where there is a cluster: the server chose it
        self._runner: ClusterSweepRunner | None = None

    @property
    def on_cluster(self) -> bool:
        return self.available and self.use_cluster

    @property
    def note(self) -> str:
        """One line for the participant: where sweeps run, and why a cluster is not offered."""
        if not self.address:
            return (
                "No Dask cluster is configured on this server: sweeps run here. (The server "
                "offers one when started with `batscope serve --dask-scheduler ADDRESS` or "
                f"{SCHEDULER_ENV}.)"
            )
        if not self.installed:
            return (
                "This server names a Dask cluster but Dask is not installed: sweeps run here. "
                '(python -m pip install "batscope[cluster]")'
            )
        if self.use_cluster:
            return "Sweeps run on the server's Dask cluster, and still use one of its slots."
        return "Sweeps run in this server's process."

    def convergence_runner(self) -> ClusterSweepRunner | None:
        """The Fig. 3 runner on the cluster when it is chosen, else None (in process)."""
        if not self.on_cluster:
            return None
        if self._runner is None:
            self._runner = ClusterSweepRunner(self.address)
        return self._runner
