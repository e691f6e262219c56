"""The app's sweep panel state (GridSweepController) and the "use cluster" choice, in process:
plans validated before anything is written, runs handed out as they end, Cancel and resume,
and the session's memory budget and the server's slots shared with the Convergence tab's sweep.
"""

import csv
import re
import time

import pytest
from batscope.engine.slots import TRAINING_SLOTS
from batscope.training.grid_sweep import MAX_PANEL_RUNS, NONE, GridRun, GridSweepController
from batscope.training.resources import (
    MemoryBroker,
    SessionAccount,
    sweep_estimate,
    training_estimate,
)
from batscope.training.state import LayerSpec, NetworkSpec, SweepConfig, TrainingConfig
from batscope.training.sweep import SweepController
from batscope.training.sweep_remote import SCHEDULER_ENV, ClusterChoice, dashboard_href

HERE = ClusterChoice(address="")  # no scheduler: sweeps run in this process


@pytest.fixture(autouse=True)
def sweeps_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("BATSCOPE_SWEEP_DIR", str(tmp_path / "sweeps"))
    return tmp_path / "sweeps"


def setup(epochs=20):
    """The app's default setup: the convergence task, one layer of 2 neurons."""
    return NetworkSpec(), TrainingConfig(epochs=epochs)


def poll_until(ctrl, done=("finished", "stopped", "error"), timeout=120.0) -> list[GridRun]:
    runs, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        runs += ctrl.poll()
        if ctrl.status in done:
            return runs + ctrl.poll()
        time.sleep(0.02)
    raise AssertionError(f"status stayed {ctrl.status!r}")


def test_every_value_is_checked_before_anything_is_written(sweeps_dir):
    ctrl = GridSweepController(*setup(), cluster=HERE)
    refusals = {
        ("training.lr", "0.1, -1", "0"): r"training\.lr=-1 .*lr",
        ("training.loss", "spike_count, nope", "0"): r"training\.loss='nope'",
        ("training.lr", "0.1, 0.1", "0"): "values must be distinct",
        ("training.lr", "0.1", "2-1"): "--seeds",
        ("training.lr", "0.1", "0-99999999999"): "more than 10000 seeds",
        ("training.lr", "0.1", "0-64"): f"65 runs; at most {MAX_PANEL_RUNS}",
        ("training.lr", ",".join(str(i / 100) for i in range(1, 66)), "0"): "at most",
        ("training.lr", "0.1" + " " * 300, "0"): "at most 200 characters",
    }
    for (field, values, seeds), match in refusals.items():
        ctrl.param.update(x_field=field, x_values=values, seeds=seeds)
        ctrl.param.trigger("run")
        assert ctrl.status == "idle"
        assert ctrl.message and re.search(match, ctrl.message), ctrl.message
    ctrl.param.update(x_values="0.1", y_field="training.lr", y_values="0.2")
    with pytest.raises(ValueError, match="first axis already"):
        ctrl.make_plan()
    with pytest.raises(ValueError):
        ctrl.x_field = "network.layers.0.nope"  # only the offered fields
    assert not sweeps_dir.exists()


def test_the_offered_fields_follow_the_layers():
    net, tr = setup()
    ctrl = GridSweepController(net, tr, cluster=HERE)
    assert "network.layers.1.theta" not in ctrl.param.x_field.objects
    net.set_layers([LayerSpec(size=4), LayerSpec(size=2)])
    assert "network.layers.1.theta" in ctrl.param.x_field.objects
    assert "network.layers.0.size" in ctrl.param.x_field.objects
    assert "network.layers.1.size" not in ctrl.param.x_field.objects  # the task's classes
    ctrl.x_field, ctrl.y_field = "network.layers.1.theta", "network.layers.1.n_max"
    net.set_layers([LayerSpec(size=2)])
    assert ctrl.x_field == "training.lr" and ctrl.y_field == NONE


def test_runs_fill_in_and_the_same_sweep_again_trains_nothing(sweeps_dir):
    account = SessionAccount(MemoryBroker(10**10, 10**9))
    ctrl = GridSweepController(*setup(), account=account, cluster=HERE)
    ctrl.param.update(
        x_field="training.lr",
        x_values="0.05, 0.1",
        y_field="network.layers.0.n_max",
        y_values="10, 20",
        seeds="0",
    )
    ctrl.start()
    assert ctrl.status in ("running", "queued") and ctrl.runs_total == 4
    runs = poll_until(ctrl)
    assert ctrl.status == "finished", ctrl.message
    assert ctrl.runs_done == 4 and not ctrl.on_cluster and ctrl.dashboard_link == ""
    assert sorted(r.values for r in runs) == sorted(
        (("training.lr", lr), ("network.layers.0.n_max", s)) for lr in (0.05, 0.1) for s in (10, 20)
    )
    assert {r.record["status"] for r in runs} == {"trained"}
    assert all(0 <= r.accuracy <= 100 for r in runs)
    table = list(csv.DictReader(open(sweeps_dir / ctrl.folder / "summary.csv")))
    assert len(table) == 4 and {row["status"] for row in table} == {"trained"}
    assert account.used == 0 and not ctrl.alive  # the reservation and the slot are back

    again = GridSweepController(*setup(), account=account, cluster=HERE)  # e.g. after a reload
    again.param.update(**{k: getattr(ctrl, k) for k in ("x_values", "y_field", "y_values")})
    again.seeds = "0"
    again.start()
    rerun = poll_until(again)
    assert again.folder == ctrl.folder and {r.record["status"] for r in rerun} == {"done"}
    assert [r.accuracy for r in sorted(rerun, key=lambda r: r.key)] == [
        r.accuracy for r in sorted(runs, key=lambda r: r.key)
    ]


def test_cancel_stops_mid_run_and_the_sweep_resumes_from_its_checkpoint():
    ctrl = GridSweepController(*setup(epochs=100_000), cluster=HERE)
    ctrl.param.update(x_values="0.1", seeds="0")
    ctrl.start()
    folder = None
    end = time.monotonic() + 120
    while folder is None or not (folder / "checkpoints" / "last.json").is_file():
        assert time.monotonic() < end and ctrl.status in ("running", "queued"), ctrl.message
        ctrl.poll()
        runs = list((ctrl.plan.out).glob("config-*"))
        folder = runs[0] if runs else None
        time.sleep(0.05)
    ctrl.param.trigger("stop")
    assert poll_until(ctrl) == [] and ctrl.status == "stopped"
    assert ctrl.account.used == 0
    assert not (folder / "summary.json").exists()  # not finished: resumable


def test_use_cluster_is_on_only_where_the_server_names_a_scheduler(monkeypatch):
    monkeypatch.delenv(SCHEDULER_ENV, raising=False)
    none = ClusterChoice()
    assert not none.available and not none.use_cluster and not none.on_cluster
    assert "--dask-scheduler" in none.note and none.convergence_runner() is None
    none.use_cluster = True  # a browser flipping a disabled switch changes nothing
    assert not none.on_cluster and none.convergence_runner() is None

    monkeypatch.setenv(SCHEDULER_ENV, " tcp://10.0.0.5:8786 ")
    named = ClusterChoice()
    assert named.address == "tcp://10.0.0.5:8786" and named.available
    assert named.use_cluster and named.on_cluster  # on by default: the server chose it
    assert named.convergence_runner().address == named.address
    assert "Dask cluster" in named.note
    named.use_cluster = False
    assert not named.on_cluster and named.convergence_runner() is None
    assert named.note == "Sweeps run in this server's process."

    for bad in ("javascript:alert(1)", "data:text/html,x", "ftp://h/", "http://", "", None, 3):
        assert dashboard_href(bad) == ""
    assert dashboard_href("http://10.0.0.5:8787/status") == "http://10.0.0.5:8787/status"
    assert dashboard_href("https://dask.example/status") == "https://dask.example/status"


def fig3_estimate(ctrl) -> int:
    return sweep_estimate([ctrl.engine_config("multi")], ctrl.chunk_cells).total


@pytest.mark.parametrize("cluster", [False, True])
def test_a_second_sweep_beyond_the_session_budget_is_refused(cluster):
    """Cluster or not, a sweep holds its reservation and a slot: a second one that does not
    fit the session's budget is refused with the broker's message."""
    net, tr = setup()
    choice = ClusterChoice(address="tcp://127.0.0.1:9" if cluster else "")
    one = training_estimate(
        {"version": 1, "network": net.to_dict(), "training": tr.to_dict()}
    ).total
    account = SessionAccount(MemoryBroker(10**10, int(1.5 * one)))
    first = GridSweepController(net, tr, account=account, cluster=choice)
    held = 0
    while TRAINING_SLOTS.acquire(blocking=False):  # every slot taken: the first sweep queues
        held += 1
    try:
        first.start()
        assert first.status == "queued" and first.queue_position == 1
        assert first.on_cluster is cluster and account.used == one
        second = GridSweepController(net, tr, account=account, cluster=choice)
        second.x_values = "0.2"  # another sweep
        second.param.trigger("run")
        assert second.status == "idle" and not second.alive
        assert "this session already holds" in second.message
        first.param.trigger("stop")
        assert poll_until(first) == [] and first.status == "stopped" and account.used == 0

        # the Convergence tab's sweep and the panel's share the session's budget too
        fig3 = SweepController(SweepConfig(mu_max=0.2, sigma_max=0.2), account=account)
        fig3.variants = ["multi"]
        account.broker.per_session = fig3_estimate(fig3) + one // 2
        fig3.start()
        assert fig3.status == "queued"
        first.param.trigger("run")
        assert first.status == "stopped" and "this session already holds" in first.message
        fig3.param.trigger("stop")
        poll_until(fig3)
    finally:
        for _ in range(held):
            TRAINING_SLOTS.release()
    assert account.used == 0


def test_the_convergence_sweep_runs_here_when_use_cluster_is_off():
    choice = ClusterChoice(address="tcp://127.0.0.1:9")  # a scheduler nobody needs to reach
    choice.use_cluster = False
    fig3 = SweepController(
        SweepConfig(mu_max=0.2, sigma_max=0.2, repeats=2, epochs=3), cluster=choice
    )
    fig3.variants = ["multi"]
    fig3.start()
    poll_until(fig3)
    assert fig3.status == "finished" and fig3.cells_done == 4 and fig3.dashboard_link == ""


def test_an_unreachable_cluster_is_an_error_that_gives_everything_back():
    pytest.importorskip("distributed")
    ctrl = GridSweepController(*setup(), cluster=ClusterChoice(address="tcp://127.0.0.1:9"))
    ctrl.start()
    assert ctrl.on_cluster
    poll_until(ctrl, timeout=60)
    assert ctrl.status == "error" and "does not answer" in ctrl.message
    assert "127.0.0.1:9" not in ctrl.message  # the server's address stays on the server
    assert ctrl.account.used == 0 and not ctrl.alive


def test_cancelling_is_said_until_the_sweep_has_stopped():
    ctrl = GridSweepController(*setup(epochs=100_000), cluster=HERE)
    ctrl.param.update(x_values="0.1", seeds="0")
    ctrl.start()
    poll_until(ctrl, done=("running",))
    ctrl.request_stop()
    ctrl.poll()
    assert ctrl.status in ("running", "stopped")
    if ctrl.status == "running":
        assert ctrl.message.startswith("Cancelling")
    poll_until(ctrl)
    assert ctrl.status == "stopped" and ctrl.message == ""
