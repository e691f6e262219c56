"""A sweep in one process vs on a 2-worker Dask LocalCluster, per-task overhead, and a projection.

Three measurements, then a projection::

    python benchmarks/sweep.py            # about 2-3 minutes on the 2-core VM

1. **Per-task overhead** of the cluster: a round of no-op tasks on the 2 workers (wall / tasks),
   and the cluster's start-up time.
2. **The same sweep both ways**, after an untimed warm-up on each side (Numba kernels loaded):
   - ``training``: ``--runs`` runs (seeds) of a small MNIST configuration on the embedded sample,
     one after the other in this process (Numba on every core, as ``batscope train`` runs them),
     then as ``batscope sweep`` runs them: 2 worker processes × 1 Numba thread;
   - ``heatmap``: the paper's Fig. 3 grid (13 × 13 cells × ``--repeats``, 50 epochs, multi-spike)
     with ``engine.convergence.run_sweep`` in this process (one batch), then in chunks on the
     cluster (8 a worker, ``batscope sweep``'s default).
   Each side is timed ``--rounds`` times, alternating, and the quickest kept. Throughput is runs
   per second; the goal is cluster ≥ 0.9 × in-process.
3. **Per-run cost of every paper table** (docs/training.md §3): samples/s of one training step and
   of one forward pass of each experiment's network on 50-sample batches of the embedded sample
   (EMNIST's 784-800-47 on MNIST images: same input statistics, its own output size), turned into
   the cost of one full run (epochs × (training set / train rate + val and test / forward rate)).
   The projection for a 5-seed reproduction is per-run cost × runs / workers (never less than the
   longest run), per table and for all tables together; workers are assumed as fast as this
   machine's 2 cores at the load measured.

It prints one JSON object. Figures depend on the machine's load (printed before and after).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path

from batscope import datasets
from batscope.engine.convergence import SweepConfig, run_sweep
from batscope.training.experiments import experiment_config
from batscope.training.sweep_cluster import close_client, open_client, run_plan
from batscope.training.sweep_plan import plan_sweep
from batscope.training.sweep_tasks import train_cell
from batscope.training.trainer import Trainer, load_task

# one full run of a paper table: (experiment, training samples, val + test samples, epochs)
TABLES = {
    "mnist-multi": (55_000, 15_000, 100),
    "mnist-single": (55_000, 15_000, 30),
    "fashion": (55_000, 15_000, 100),
    "emnist": (107_800, 23_800, 100),  # balanced: 112,800 train (5,000 held out), 18,800 test
}
FIG3_RUNS = 13 * 13 * 100  # one Fig. 3 heatmap: 169 cells × 100 repeats


def small_config(epochs: int) -> dict:
    """784-100-10 on 800 embedded MNIST samples (200 held out), float32."""
    layer = {"tau_s": 0.13, "n_max": 10, "init": "uniform", "init_low": -1.0, "init_high": 1.0}
    return {
        "version": 1,
        "network": {
            "layers": [
                {**layer, "size": 100, "theta": 0.2, "reset": 0.2},
                {**layer, "size": 10, "theta": 0.8, "reset": 0.8},
            ]
        },
        "training": {
            "task": "mnist",
            "epochs": epochs,
            "n_train": 1000,
            "batch_size": 50,
            "val_fraction": 0.2,
            "y_true": 8,
            "y_false": 2,
            "dtype": "float32",
        },
        "run": {"data": "sample"},
    }


def noop(i: int) -> int:
    return i


def warm(config: dict) -> None:
    """One short run (loads the Numba kernels of this process) in a scratch folder."""
    with tempfile.TemporaryDirectory() as tmp:
        train_cell({**config, "training": {**config["training"], "epochs": 1}}, tmp + "/w")
        run_sweep(SweepConfig(means=(1.0,), stds=(0.4,), repeats=2, epochs=2))


def overhead(client, n: int = 400) -> float:
    client.gather(client.map(noop, range(20), pure=False))
    t0 = time.perf_counter()
    client.gather(client.map(noop, range(n), pure=False))
    return (time.perf_counter() - t0) / n


def training_sweep(client, runs: int, epochs: int, out: Path) -> tuple[float, float]:
    """Seconds for ``runs`` small runs in this process, then on the cluster."""
    config = small_config(epochs)
    seeds = list(range(100, 100 + runs))
    plan = plan_sweep(config=config, out=out / "in-process", seeds=seeds)
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # no progress bars
        for cell in plan.cells:
            train_cell(cell.config, str(plan.out / cell.key))
    local = time.perf_counter() - t0
    plan = plan_sweep(config=config, out=out / "cluster", seeds=seeds)
    t0 = time.perf_counter()
    records = run_plan(plan, client)
    cluster = time.perf_counter() - t0
    assert all(r["status"] == "trained" for r in records.values()), records
    return local, cluster


def heatmap_sweep(client, repeats: int, out: Path) -> tuple[float, float]:
    """Seconds for one Fig. 3 heatmap in this process (one batch), then in chunks on the cluster."""
    cfg = SweepConfig(repeats=repeats, epochs=50, variant="multi")
    t0 = time.perf_counter()
    run_sweep(cfg)
    local = time.perf_counter() - t0
    plan = plan_sweep("convergence-multi", out=out, grid={"sweep.repeats": [repeats]})
    t0 = time.perf_counter()
    records = run_plan(plan, client)
    cluster = time.perf_counter() - t0
    assert all(r["status"] == "trained" for r in records.values()), records
    return local, cluster


def best_of(rounds: int, runs: int, measure, out: Path) -> dict:
    """``measure(out)`` ``rounds`` times (fresh folders); the quickest of each side."""
    times = [measure(out / f"round-{r}") for r in range(rounds)]
    report = _compare(runs, min(t[0] for t in times), min(t[1] for t in times))
    report["rounds_s"] = [[round(a, 2), round(b, 2)] for a, b in times]
    return report


def _compare(runs: int, local: float, cluster: float) -> dict:
    return {
        "runs": runs,
        "in_process_s": round(local, 2),
        "cluster_s": round(cluster, 2),
        "in_process_runs_per_s": round(runs / local, 3),
        "cluster_runs_per_s": round(runs / cluster, 3),
        "cluster_over_in_process": round(local / cluster, 3),
    }


def step_rates(name: str, batches: int) -> tuple[float, float]:
    """(train, forward) samples/s of ``name``'s network on 50-sample sample batches."""
    config = experiment_config(name)
    tr = config["training"]
    if tr["task"] == "emnist":  # no embedded EMNIST: MNIST images through the 784-800-47 net
        tr["task"] = "mnist"
    # one batch more than timed: the epoch's last batch evaluates every split (untimed)
    tr.update(n_train=50 * (batches + 2), batch_size=50, val_fraction=0.0, epochs=1)
    data = load_task(tr)
    n_out = config["network"]["layers"][-1]["size"]
    data = dataclasses.replace(data, n_classes=n_out)  # 47 for EMNIST, whose labels are a subset
    trainer = Trainer({k: config[k] for k in ("version", "network", "training")}, data=data)
    trainer.step()  # untimed warm-up batch
    t0 = time.perf_counter()
    for _ in range(batches):
        trainer.step()
    train = 50 * batches / (time.perf_counter() - t0)
    images = datasets.load_sample("mnist", "test")[0][:500]
    xs = [
        datasets.encode_ttfs(images[lo : lo + 50], tr["t_enc"], dtype=tr["dtype"])
        for lo in range(0, 500, 50)
    ]
    t0 = time.perf_counter()
    for x in xs:
        trainer.network.forward(x, tr["t_max"])
    forward = 500 / (time.perf_counter() - t0)
    return train, forward


def projection(batches: int, workers: tuple[int, ...]) -> dict:
    tables = {}
    for name, (n_train, n_eval, epochs) in TABLES.items():
        train, forward = step_rates(name, batches)
        per_run = epochs * (n_train / train + n_eval / forward)
        tables[name] = {
            "train_samples_per_s": round(train, 1),
            "forward_samples_per_s": round(forward, 1),
            "epochs": epochs,
            "per_run_h": round(per_run / 3600, 2),
            "five_seeds_h": {w: round(per_run * math.ceil(5 / w) / 3600, 2) for w in workers},
        }
    total = sum(t["per_run_h"] for t in tables.values()) * 5
    longest = max(t["per_run_h"] for t in tables.values())
    return {
        "tables": tables,
        "all_tables_5_seeds_cpu_h": round(total, 1),
        # per-run cost × runs / workers, never below the longest single run
        "all_tables_5_seeds_wall_h": {w: round(max(total / w, longest), 1) for w in workers},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=6, help="training runs per side")
    p.add_argument("--epochs", type=int, default=2, help="epochs per training run")
    p.add_argument("--repeats", type=int, default=100, help="Fig. 3 repeats per cell")
    p.add_argument("--batches", type=int, default=4, help="timed batches per paper network")
    p.add_argument("--rounds", type=int, default=2, help="times each sweep is timed (best kept)")
    args = p.parse_args()
    report = {"machine": {"cores": os.cpu_count(), "load_before": os.getloadavg()}}
    warm(small_config(1))
    t0 = time.perf_counter()
    client = open_client(2, workers=2, dashboard=None)
    report["cluster_start_s"] = round(time.perf_counter() - t0, 2)
    try:
        client.run(warm, small_config(1))
        report["per_task_overhead_ms"] = round(1000 * overhead(client), 2)
        with tempfile.TemporaryDirectory() as tmp:
            report["training"] = best_of(
                args.rounds,
                args.runs,
                lambda out: training_sweep(client, args.runs, args.epochs, out),
                Path(tmp) / "training",
            )
            report["heatmap"] = best_of(
                args.rounds,
                169 * args.repeats,
                lambda out: heatmap_sweep(client, args.repeats, out),
                Path(tmp) / "heatmap",
            )
    finally:
        close_client(client)
    report["projection"] = projection(args.batches, (1, 5, 20))
    fig3 = report["heatmap"]["in_process_runs_per_s"]
    report["projection"]["fig3_heatmap_5_seeds_both_variants_h"] = round(
        2 * 5 * FIG3_RUNS / fig3 / 3600, 2
    )
    report["machine"]["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
