"""A sweep on Dask: its cells submitted as tasks, ``summary.csv`` rewritten as each one ends.

:func:`open_client` starts a ``LocalCluster`` of worker processes sized so that workers × Numba
threads = cores (nothing oversubscribes), connects to an existing scheduler, or starts one worker
per GPU with dask-cuda. :func:`run_plan` submits a :class:`~.sweep_plan.SweepPlan`: one task per
training run, or per chunk of a Fig. 3 heatmap, whose chunks are assembled once all are in.
Cells whose folder already holds a finished run are not submitted at all. :func:`run_plan_here`
runs a training plan's cells one after another in this process instead (the app's sweep panel
when no cluster is chosen), with the same folders, records and ``summary.csv``.

Faults: when a worker dies, Dask gives its task to another worker (the nanny starts a new one),
and the task resumes its run folder from the last checkpoint; a task that kills workers
repeatedly ends as ``KilledWorker``, recorded like any failing cell. Ctrl-C cancels every
pending task before the client and the cluster are closed; what finished stays in
``summary.csv``, and the same command resumes the rest. ``should_stop`` (the app's Cancel) does the
same without an exception, and returns once the runs already started on workers have ended there
(Dask does not interrupt a running task): their folders are found finished next time. The
results location must be a path every worker and the client can reach (one machine, or a shared
file system); two sweeps writing the same cells at the same time are not supported. Workers of
an existing cluster (``--scheduler``) keep their own thread settings.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable

import numpy as np
from batscope.engine.convergence import grid_chunks
from batscope.engine.io import atomic_write_bytes

from .sweep_plan import CHUNKS_PER_WORKER, HEATMAP_EXPERIMENTS, SweepPlan, engine_config
from .sweep_tasks import (
    assemble_heatmap,
    error_text,
    finished_heatmap,
    finished_run,
    heatmap_chunk,
    train_cell,
)

TRAIN_COLUMNS = (
    "status",
    "final_test_accuracy",
    "final_train_accuracy",
    "best_val_accuracy",
    "best_test_accuracy",
    "best_epoch",
    "epochs",
    "alerts",
    "resumed_from",
    "seconds",
    "error",
)
HEATMAP_COLUMNS = ("status", "mean_accuracy", "cells", "runs", "seconds", "error")
INSTALL_CLUSTER = 'Dask is not installed: python -m pip install "batscope[cluster]"'
STOP_POLL_S = 0.05  # how often a stoppable sweep looks at its stop flag while tasks run


def worker_layout(n_tasks: int, workers: int | None = None, cores: int | None = None):
    """``(workers, numba_threads)`` for a local cluster: by default one worker per core (no more
    than there are tasks), and the cores shared out as Numba threads."""
    cores = cores or os.cpu_count() or 1
    if workers is None:
        workers = max(1, min(cores, n_tasks))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"--workers must be an integer >= 1, got {workers!r}")
    return workers, max(1, cores // workers)


def worker_env(threads: int) -> dict[str, str]:
    """The environment of each worker process: its Numba (and OpenMP) threads, no progress bars."""
    return {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1"}


def open_client(
    n_tasks: int,
    workers: int | None = None,
    scheduler: str | None = None,
    gpu: bool = False,
    dashboard: str | None = ":0",
):
    """A ``distributed.Client``: to ``scheduler``, or to a new local (CUDA) cluster it owns and
    closes with it. ValueError when Dask (or dask-cuda for ``gpu``) is missing."""
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError(INSTALL_CLUSTER) from None
    if scheduler is not None:
        return Client(scheduler, set_as_default=False)
    if gpu:
        try:
            from dask_cuda import LocalCUDACluster
        except ImportError:
            raise ValueError(
                "--gpu starts one worker per GPU with dask-cuda, which is not installed: "
                "python -m pip install dask-cuda (and batscope[gpu] for CuPy)"
            ) from None
        with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_env(1)}):
            cluster = LocalCUDACluster(
                threads_per_worker=1, dashboard_address=dashboard, silence_logs=logging.ERROR
            )
    else:
        n, threads = worker_layout(n_tasks, workers)
        env = worker_env(threads)
        # set before each worker process is spawned: Numba reads its thread count, tqdm its
        # switch, when first imported, which may precede a plain ``env``. The nannies run in
        # this process and write it into its environment: put ours back, or this process's
        # next Numba compilation fails (its threads run with the count they started with).
        # A worker the nanny respawns later writes it again.
        ours = {k: os.environ.get(k) for k in env}
        try:
            with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
                cluster = LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=dashboard,
                    silence_logs=logging.ERROR,
                )
        finally:
            for k, v in ours.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    client = Client(cluster, set_as_default=False)
    client.owned_cluster = cluster
    return client


def close_client(client) -> None:
    """Close the client and, if it started one, its cluster."""
    cluster = getattr(client, "owned_cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def _text(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def summary_csv(plan: SweepPlan, records: dict[str, dict]) -> str:
    """One row per cell that has ended (plan order): its run folder, swept values, seed and
    record (``status``: trained, done before this command, or error)."""
    columns = TRAIN_COLUMNS if plan.kind == "train" else HEATMAP_COLUMNS
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", *plan.fields, "seed", *columns])
    for cell in plan.cells:
        rec = records.get(cell.key)
        if rec is not None:
            values = [_text(v) for _, v in cell.values]
            w.writerow([cell.key, *values, cell.seed, *(_text(rec.get(c)) for c in columns)])
    return buf.getvalue()


def write_summary(plan: SweepPlan, records: dict[str, dict]) -> None:
    atomic_write_bytes(plan.out / "summary.csv", summary_csv(plan, records).encode())


def _write_plan(plan: SweepPlan) -> None:
    doc = {
        "format": "batscope-sweep",
        "name": plan.name,
        "kind": plan.kind,
        "fields": list(plan.fields),
        "runs": [{"run": c.key, "seed": c.seed, "values": dict(c.values)} for c in plan.cells],
    }
    atomic_write_bytes(plan.out / "sweep.json", (json.dumps(doc, indent=1) + "\n").encode())


def pending_cells(plan: SweepPlan) -> tuple[dict[str, dict], list]:
    """``(records of finished cells, cells still to run)``."""
    records, todo = {}, []
    for cell in plan.cells:
        folder = str(plan.out / cell.key)
        done = (finished_run if plan.kind == "train" else finished_heatmap)(folder, cell.config)
        if done is None:
            todo.append(cell)
        else:
            records[cell.key] = done
    return records, todo


def task_count(plan: SweepPlan, cells) -> int:
    """Most tasks the cells can make (sizes a local cluster): a run, or a heatmap grid cell."""
    if plan.kind == "train":
        return len(cells)
    return sum(int(np.prod(_engine(c).shape)) for c in cells)  # at most a chunk a grid cell


def _engine(cell):
    return engine_config(cell.config, HEATMAP_EXPERIMENTS[cell.config["run"]["experiment"]])


def chunk_size(plan: SweepPlan, cell, workers: int) -> int:
    """Heatmap cells per task: ``plan.chunk_cells``, or enough for CHUNKS_PER_WORKER a worker."""
    if plan.chunk_cells is not None:
        return plan.chunk_cells
    cells = int(np.prod(_engine(cell).shape))
    return max(1, math.ceil(cells / (CHUNKS_PER_WORKER * max(1, workers))))


def open_plan(
    plan: SweepPlan, on_record: Callable[[str, dict], None] | None = None
) -> tuple[dict[str, dict], list]:
    """Make ``plan.out`` with ``sweep.json`` and ``summary.csv`` of the cells finished before;
    ``on_record`` each of them; return ``(their records, the cells still to run)``."""
    plan.out.mkdir(parents=True, exist_ok=True)
    _write_plan(plan)
    records, todo = pending_cells(plan)
    for cell in plan.cells:
        if cell.key in records and on_record is not None:
            on_record(cell.key, records[cell.key])
    write_summary(plan, records)
    return records, todo


def run_plan_here(
    plan: SweepPlan,
    on_record: Callable[[str, dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, dict]:
    """The unfinished cells of a training ``plan`` one after another in this process; a run
    stopped by ``should_stop`` is left to resume (no record). ``{run folder name: record}``."""
    if plan.kind != "train":
        raise ValueError("run_plan_here runs training cells; heatmaps go through run_plan")
    records, todo = open_plan(plan, on_record)
    for cell in todo:
        if should_stop is not None and should_stop():
            break
        rec = train_cell(cell.config, str(plan.out / cell.key), plan.data_dir, should_stop)
        if rec["status"] == "stopped":
            break
        records[cell.key] = rec
        write_summary(plan, records)
        if on_record is not None:
            on_record(cell.key, rec)
    return records


def _executing(dask_worker) -> list:
    """The keys a worker is still computing, cancelled ones included (run on each worker)."""
    busy = ("executing", "long-running", "cancelled", "resumed")
    return [ts.key for ts in dask_worker.state.tasks.values() if ts.state in busy]


def wait_until_ended(client, keys: set) -> None:
    """Return once no worker computes any of ``keys``: Dask does not interrupt a running task,
    and the same cell started again meanwhile would write its folder twice at once."""
    while keys and keys.intersection(k for ks in client.run(_executing).values() for k in ks):
        time.sleep(STOP_POLL_S * 4)


def _ended(futures: dict, should_stop: Callable[[], bool] | None, client):
    """Each future of ``futures`` as it ends; when ``should_stop()`` turns true the others are
    cancelled and the iteration ends."""
    from distributed import as_completed

    ready = as_completed(list(futures), loop=client.loop)
    if should_stop is None:
        yield from ready
        return
    while not ready.is_empty():
        if should_stop():
            pending = [f for f in futures if not f.done()]
            client.cancel(pending, force=True)
            wait_until_ended(client, {f.key for f in pending})
            return
        batch = ready.next_batch(block=False)
        if not batch:
            time.sleep(STOP_POLL_S)
        yield from batch


def run_plan(
    plan: SweepPlan,
    client=None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    gpu: bool = False,
    on_record: Callable[[str, dict], None] | None = None,
    on_client: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, dict]:
    """Run every unfinished cell of ``plan`` on ``client`` (or a cluster opened and closed here)
    and return ``{run folder name: record}``; ``on_record(name, record)`` after each cell,
    ``on_client(client)`` once a cluster is opened here; ``should_stop()`` true cancels the
    cells not yet ended (they get no record)."""
    records, todo = open_plan(plan, on_record)
    if not todo:
        return records
    own = client is None
    if own:
        client = open_client(task_count(plan, todo), workers, scheduler, gpu)
        if on_client is not None:
            on_client(client)
    futures: dict = {}
    try:
        parts: dict[str, list] = {}
        expected: dict[str, int] = {}
        n_workers = len(client.scheduler_info()["workers"])
        for cell in todo:
            folder = str(plan.out / cell.key)
            if plan.kind == "train":
                fut = client.submit(
                    train_cell, cell.config, folder, plan.data_dir, key=f"run-{cell.key}"
                )
                futures[fut] = cell
                continue
            parts[cell.key] = []
            chunks = grid_chunks(_engine(cell), chunk_size(plan, cell, n_workers))
            expected[cell.key] = len(chunks)
            for i, cells in enumerate(chunks):
                fut = client.submit(
                    heatmap_chunk, cell.config, folder, i, cells, key=f"chunk-{cell.key}-{i}"
                )
                futures[fut] = cell
        for fut in _ended(futures, should_stop, client):
            cell = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # KilledWorker, a lost connection: recorded, not raised
                rec = {"status": "error", "error": error_text(exc)}
            fut.release()
            if plan.kind != "train":
                parts[cell.key].append(rec)
                if len(parts[cell.key]) < expected[cell.key]:
                    continue
                rec = _heatmap_record(cell, str(plan.out / cell.key), parts.pop(cell.key))
            records[cell.key] = rec
            write_summary(plan, records)
            if on_record is not None:
                on_record(cell.key, rec)
    except KeyboardInterrupt:
        client.cancel(list(futures), force=True)
        raise
    finally:
        if own:
            close_client(client)
    return records


def _heatmap_record(cell, folder: str, chunks: list[dict]) -> dict:
    seconds = sum(c.get("seconds", 0.0) for c in chunks)
    errors = [c["error"] for c in chunks if c["status"] == "error"]
    if errors:
        return {"status": "error", "error": errors[0], "seconds": seconds}
    try:
        return assemble_heatmap(cell.config, folder, chunks, seconds)
    except Exception as exc:  # e.g. the results location is not writable
        return {"status": "error", "error": error_text(exc), "seconds": seconds}
