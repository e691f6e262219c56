"""``batscope sweep`` on a real LocalCluster of 2 worker processes: the same numbers as in process,
a worker killed mid-run, a re-run that trains nothing, a failing cell, Ctrl-C, summary.csv."""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from batscope.engine.convergence import SweepConfig, run_sweep
from batscope.training.state import SweepConfig as GridConfig
from batscope.training.sweep import SweepController
from batscope.training.sweep_cluster import (
    _executing,
    chunk_size,
    close_client,
    open_client,
    run_plan,
    task_count,
    worker_layout,
)
from batscope.training.sweep_plan import engine_config, parse_seeds, parse_set, plan_sweep
from batscope.training.sweep_remote import ClusterChoice
from batscope.training.sweep_tasks import train_cell
from batscope.widgets.convergence import ConvergenceView

distributed = pytest.importorskip("distributed")


def tiny(epochs=2, n_train=200, **training) -> dict:
    """784-20-10 on the embedded MNIST sample (float32): a second or two per run."""
    layer = {"tau_s": 0.13, "n_max": 5, "init": "uniform", "init_low": -1.0, "init_high": 1.0}
    return {
        "version": 1,
        "network": {
            "layers": [
                {**layer, "size": 20, "theta": 0.2, "reset": 0.2},
                {**layer, "size": 10, "theta": 0.6, "reset": 0.6},
            ]
        },
        "training": {
            "task": "mnist",
            "epochs": epochs,
            "n_train": n_train,
            "batch_size": 50,
            "val_fraction": 0.2,
            "y_true": 5,
            "y_false": 1,
            "dtype": "float32",
            **training,
        },
        "run": {"data": "sample"},
    }


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# this process's environment before any cluster of this module starts
WORKER_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "TQDM_DISABLE")
ENV_BEFORE = {k: os.environ.get(k) for k in WORKER_VARIABLES}


@pytest.fixture(scope="module")
def client():
    c = open_client(2, workers=2, dashboard=None)
    assert len(c.scheduler_info()["workers"]) == 2
    yield c
    close_client(c)


def test_a_local_cluster_leaves_this_process_environment_alone(client):
    """The nannies write the workers' Numba thread count into the process they run in: left
    there, this process's next Numba compilation would fail (its threads already run)."""
    assert {k: os.environ.get(k) for k in ENV_BEFORE} == ENV_BEFORE


# --- the plan: validated before anything is submitted ------------------------------------------


def test_seeds_and_set_are_parsed():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0-1,7") == [0, 1, 7]
    assert parse_set("training.loss=spike_count,ttfs_ce") == (
        "training.loss",
        ["spike_count", "ttfs_ce"],
    )
    assert parse_set("network.layers.0.theta=0.1,0.2") == ("network.layers.0.theta", [0.1, 0.2])
    for bad in ("4-2", "a", "1,1", "-1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    with pytest.raises(ValueError, match="FIELD=V1"):
        parse_set("training.lr")


def test_plan_refuses_a_bad_field_or_value_naming_it(tmp_path):
    with pytest.raises(ValueError, match="no field training.lrr"):
        plan_sweep(config=tiny(), out=tmp_path, grid={"training.lrr": [0.1]})
    with pytest.raises(ValueError, match="no field network.layers.5"):
        plan_sweep(config=tiny(), out=tmp_path, grid={"network.layers.5.theta": [0.1]})
    with pytest.raises(ValueError, match=r"network\.layers\.0\.theta=-1.*theta"):
        plan_sweep(config=tiny(), out=tmp_path, grid={"network.layers.0.theta": [0.2, -1]})
    with pytest.raises(ValueError, match="fixed network"):
        plan_sweep("convergence-multi", out=tmp_path, grid={"network.layers.0.theta": [0.5]})
    with pytest.raises(ValueError, match=r"sweep: .*repeats"):
        plan_sweep("convergence-multi", out=tmp_path, grid={"sweep.repeats": [0]})
    assert not any(tmp_path.iterdir())  # nothing written


def test_cells_are_the_grid_product_times_seeds(tmp_path):
    plan = plan_sweep(
        config=tiny(),
        out=tmp_path,
        seeds=[0, 1],
        grid={"training.lr": [0.001, 0.003], "network.layers.0.theta": [0.2, 0.3]},
    )
    assert len(plan.cells) == 8 and len({c.key for c in plan.cells}) == 8
    cell = plan.cells[-1]
    assert cell.seed == 1 and dict(cell.values) == {
        "training.lr": 0.003,
        "network.layers.0.theta": 0.3,
    }
    assert cell.config["network"]["layers"][0]["theta"] == 0.3
    again = plan_sweep(config=tiny(), out=tmp_path, seeds=[0, 1], grid=dict(plan_grid(plan)))
    assert [c.key for c in again.cells] == [c.key for c in plan.cells]  # keys are hashes


def plan_grid(plan):
    grid = {}
    for cell in plan.cells:
        for field, value in cell.values:
            grid.setdefault(field, [])
            if value not in grid[field]:
                grid[field].append(value)
    return grid


def test_local_workers_times_threads_fill_the_cores(tmp_path):
    assert worker_layout(100, cores=8) == (8, 1)
    assert worker_layout(2, cores=8) == (2, 4)
    assert worker_layout(100, workers=2, cores=8) == (2, 4)
    plan = plan_sweep("convergence-multi", out=tmp_path)  # the paper's 13 × 13 grid
    assert chunk_size(plan, plan.cells[0], workers=2) == 11  # 16 chunks: 8 a worker
    assert task_count(plan, plan.cells) == 169


# --- on the cluster ---------------------------------------------------------------------------


def test_heatmap_chunks_on_the_cluster_equal_the_in_process_sweep(client, tmp_path):
    plan = plan_sweep(
        "convergence-single",
        out=tmp_path,
        seeds=[0, 3],
        grid={"sweep.mu_max": [0.8], "sweep.sigma_max": [0.4], "sweep.repeats": [3]},
        epochs=8,
        chunk_cells=4,  # 15 cells: 4 chunks over 2 workers
    )
    records = run_plan(plan, client)
    assert [r["status"] for r in records.values()] == ["trained", "trained"]
    for cell in plan.cells:
        ref = run_sweep(engine_config(cell.config, "single"))  # one batch, in process
        with np.load(tmp_path / cell.key / "result.npz") as z:
            np.testing.assert_array_equal(z["best"], ref.best)
            np.testing.assert_array_equal(z["first_full"], ref.first_full)
            np.testing.assert_array_equal(z["accuracy"], ref.accuracy)
        assert records[cell.key]["mean_accuracy"] == pytest.approx(ref.accuracy.mean())
        lines = (tmp_path / cell.key / "heatmap.csv").read_text().splitlines()
        assert lines[0] == "Mean,Std,Accuracy" and len(lines) == 1 + 3 * (5 + 1)
    table = rows(tmp_path / "summary.csv")
    assert [r["seed"] for r in table] == ["0", "3"] and {r["sweep.mu_max"] for r in table} == {
        "0.8"
    }


def test_an_interrupted_heatmap_trains_only_its_missing_chunks(client, tmp_path):
    grid = {"sweep.mu_max": [0.4], "sweep.sigma_max": [0.2], "sweep.repeats": [2]}
    plan = plan_sweep("convergence-multi", out=tmp_path, grid=grid, epochs=5, chunk_cells=2)
    run_plan(plan, client)
    folder = tmp_path / plan.cells[0].key
    with np.load(folder / "result.npz") as z:
        first = z["best"].copy()
    chunks = sorted((folder / "chunks").iterdir())
    assert len(chunks) == 3  # 6 cells, 2 a chunk
    for name in ("summary.json", "heatmap.csv", "result.npz"):
        (folder / name).unlink()
    chunks[1].unlink()  # as if the sweep had stopped before this chunk
    kept = {p.name: p.stat().st_mtime_ns for p in (chunks[0], chunks[2])}
    records = run_plan(plan, client)
    assert records[plan.cells[0].key]["status"] == "trained"
    assert {p.name: p.stat().st_mtime_ns for p in (chunks[0], chunks[2])} == kept
    assert chunks[1].is_file()
    with np.load(folder / "result.npz") as z:
        np.testing.assert_array_equal(z["best"], first)


def test_training_sweep_summary_rerun_and_in_process_equality(client, tmp_path, monkeypatch):
    plan = plan_sweep(config=tiny(), out=tmp_path, seeds=[0, 1], grid={"training.lr": [0.01]})
    records = run_plan(plan, client)
    table = rows(tmp_path / "summary.csv")
    assert [r["run"] for r in table] == [c.key for c in plan.cells]
    assert [r["training.lr"] for r in table] == ["0.01", "0.01"]
    for row in table:
        assert row["status"] == "trained" and row["error"] == "" and row["resumed_from"] == "0"
        for col in ("final_test_accuracy", "best_val_accuracy", "best_test_accuracy"):
            assert 0.0 <= float(row[col]) <= 1.0
        assert row["epochs"] == "2"
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["run"] for r in sweep["runs"]] == [c.key for c in plan.cells]

    # the same run in this process gives the same numbers
    cell = plan.cells[0]
    alone = train_cell(cell.config, str(tmp_path / "alone"))
    for key in ("final_test_accuracy", "best_val_accuracy", "best_epoch"):
        assert alone[key] == records[cell.key][key]
    a = (tmp_path / "alone" / "metrics.csv").read_text()
    assert a == (tmp_path / cell.key / "metrics.csv").read_text()

    # the same sweep again: no cluster is even started, every run is "done"
    mtime = (tmp_path / cell.key / "model.npz").stat().st_mtime_ns

    def no_cluster(*args, **kw):
        raise AssertionError("a finished sweep started a cluster")

    monkeypatch.setattr("batscope.training.sweep_cluster.open_client", no_cluster)
    again = run_plan(plan)
    assert {r["status"] for r in again.values()} == {"done"}
    assert (tmp_path / cell.key / "model.npz").stat().st_mtime_ns == mtime
    assert [r["status"] for r in rows(tmp_path / "summary.csv")] == ["done", "done"]


def test_a_failing_cell_is_recorded_and_the_others_finish_on_a_scheduler(client, tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    plan = plan_sweep(
        config=tiny(epochs=1),
        out=tmp_path / "out",
        grid={"run.data": ["full", "sample"]},
        data_dir=empty,
    )
    records = run_plan(plan, scheduler=client.scheduler.address)  # an existing cluster
    assert len(client.scheduler_info()["workers"]) == 2  # left running
    full, sample = (records[c.key] for c in plan.cells)
    assert full["status"] == "error" and "DataMissing" in full["error"]
    assert sample["status"] == "trained"
    table = rows(tmp_path / "out" / "summary.csv")
    assert [r["status"] for r in table] == ["error", "trained"]
    assert "DataMissing" in table[0]["error"] and table[0]["run.data"] == "full"


def test_a_worker_killed_mid_run_is_replaced_and_the_run_resumes(client, tmp_path):
    plan = plan_sweep(config=tiny(epochs=6, n_train=2000), out=tmp_path, seeds=[0, 1])
    target = plan.cells[0]
    last = tmp_path / target.key / "checkpoints" / "last.json"
    done: dict = {}
    t = threading.Thread(target=lambda: done.update(run_plan(plan, client)))
    t.start()
    deadline = time.monotonic() + 240
    while not last.is_file():  # the first epoch has been checkpointed
        assert time.monotonic() < deadline and t.is_alive(), "no checkpoint appeared"
        time.sleep(0.02)
    key = f"run-{target.key}"
    addr = next(w for w, keys in client.processing().items() if key in keys)
    pid = client.run(os.getpid, workers=[addr])[addr]
    os.kill(pid, signal.SIGKILL)
    t.join(300)
    assert not t.is_alive()
    assert [done[c.key]["status"] for c in plan.cells] == ["trained", "trained"]
    assert done[target.key]["resumed_from"] >= 1  # continued from its checkpoint
    metrics = rows(tmp_path / target.key / "metrics.csv")
    pairs = [(r["epoch"], r["split"]) for r in metrics]
    assert len(pairs) == len(set(pairs))  # every epoch once
    assert {int(e) for e, _ in pairs} == set(range(7))
    assert len(rows(tmp_path / "summary.csv")) == 2
    deadline = time.monotonic() + 60  # the nanny has started a new worker
    while len(client.scheduler_info()["workers"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_ctrl_c_cancels_and_closes_the_cluster(tmp_path):
    cfg = tmp_path / "tiny.json"
    cfg.write_text(json.dumps(tiny(epochs=50, n_train=2000)))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "batscope.app.cli", "sweep", "--config", str(cfg)]
        + ["--out", str(out), "--seeds", "0-1", "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal sends it: a suite started in the background (`cmd &` in a
        # script) ignores SIGINT, and a child would inherit that and never see the signal
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + 120
    while not list(out.glob("*/checkpoints/last.json")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    children = psutil.Process(proc.pid).children(recursive=True)
    assert children  # the worker processes
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "the same command resumes" in err
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive  # the cluster is closed with the command
    assert (out / "summary.csv").read_text().startswith("run,seed,status")


# --- the app's convergence sweep on the cluster (BATSCOPE_DASK_SCHEDULER) ----------------------


def test_the_app_sweep_runs_on_the_scheduler_named_by_the_environment(client, monkeypatch):
    monkeypatch.delenv("BATSCOPE_DASK_SCHEDULER", raising=False)
    assert ClusterChoice().convergence_runner() is None  # in process
    monkeypatch.setenv("BATSCOPE_DASK_SCHEDULER", client.scheduler.address)
    choice = ClusterChoice()
    runner = choice.convergence_runner()
    cfg = SweepConfig(means=(0.0, 0.6, 1.2), stds=(0.0, 0.4), repeats=3, epochs=6)
    seen = []
    res = runner(cfg, chunk_cells=2, callback=lambda cells, acc: seen.append(len(cells)))
    ref = run_sweep(cfg)
    np.testing.assert_array_equal(res.best, ref.best)
    np.testing.assert_array_equal(res.first_full, ref.first_full)
    assert sorted(seen) == [2, 2, 2] and res.complete and runner.dashboard_link

    stopped = runner(cfg, chunk_cells=1, should_stop=lambda: True)  # Stop: the rest cancelled
    assert not stopped.done.any()

    # the controller (slots, memory, cells handed out as chunks finish) with that runner
    ctrl = SweepController(
        GridConfig(mu_max=0.4, sigma_max=0.2, step=0.2, repeats=2, epochs=5), cluster=choice
    )
    ctrl.variants = ["multi"]
    ctrl.chunk_cells = 2
    view = ConvergenceView(ctrl)  # its status line follows the controller
    ctrl.start()
    cells, deadline = [], time.monotonic() + 120
    while ctrl.status != "finished":
        assert time.monotonic() < deadline and ctrl.status != "error", ctrl.message
        cells += ctrl.poll()
        time.sleep(0.05)
    cells += ctrl.poll()
    assert sum(len(c.accuracy) for c in cells) == 6
    assert f'href="{runner.dashboard_link}"' in view.status.object  # the cluster's dashboard
    ref = run_sweep(ctrl.engine_config("multi"))
    for batch in cells:
        np.testing.assert_array_equal(
            batch.accuracy, 100.0 * ref.accuracy[batch.sigma_index, batch.mu_index]
        )


def test_should_stop_cancels_the_rest_and_waits_for_the_runs_on_workers(client, tmp_path):
    """The app's Cancel: no record for a cancelled run, nothing left computing on a worker when
    run_plan returns (a restart would write the same folder twice), and the rest resumes."""
    plan = plan_sweep(config=tiny(epochs=2), out=tmp_path, seeds=[0, 1, 2, 3, 4, 5])
    ended = []
    records = run_plan(
        plan, client, on_record=lambda key, rec: ended.append(key), should_stop=lambda: ended
    )
    assert 1 <= len(records) < 6 and {r["status"] for r in records.values()} == {"trained"}
    keys = {f"run-{c.key}" for c in plan.cells}
    computing = {k for ks in client.run(_executing).values() for k in ks}
    assert not keys & computing
    assert len(rows(tmp_path / "summary.csv")) == len(records)
    again = run_plan(plan, client)
    assert len(again) == 6 and {r["status"] for r in again.values()} <= {"trained", "done"}
    for cell in plan.cells:
        pairs = [(r["epoch"], r["split"]) for r in rows(tmp_path / cell.key / "metrics.csv")]
        assert len(pairs) == len(set(pairs))  # every epoch once
