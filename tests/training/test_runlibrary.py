"""Opening the server's run folders (training/runlibrary.py): the list, refusals, a real run read
whole, and the controller exploring it through the live snapshot path."""

from __future__ import annotations

import math
import shutil
import time

import numpy as np
import pytest
from batscope.training.controller import TrainingController
from batscope.training.runlibrary import RunOpenError, explore_config, list_runs, open_run
from batscope.training.state import NetworkSpec, TrainingConfig, ViewConfig
from batscope.training.trainer import Trainer

from .test_train_cli import tiny_config, train

NAME = "tiny/seed-0"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder holding one run written by a short real ``batscope train``."""
    tmp = tmp_path_factory.mktemp("runs")
    assert train("--config", tiny_config(tmp, epochs=1, n_train=100), "--out", tmp / "runs") == 0
    return tmp / "runs"


@pytest.fixture
def copy(runs, tmp_path):
    """A private copy of the runs folder, to damage."""
    shutil.copytree(runs, tmp_path / "runs")
    return tmp_path / "runs"


def test_the_list_names_finished_runs_only(copy, tmp_path):
    assert list_runs(copy) == [NAME]
    partial = copy / "tiny" / "seed-1"
    shutil.copytree(copy / NAME, partial)
    (partial / "model.npz").unlink()  # a run that never finished
    (copy / "outside").symlink_to(tmp_path, target_is_directory=True)
    assert list_runs(copy) == [NAME]
    assert list_runs(tmp_path / "nowhere") == []


@pytest.mark.parametrize(
    "name", ["../runs/tiny/seed-0", "/etc", "tiny/seed-0/..", "tiny/./seed-0", "", None, "tiny"]
)
def test_a_name_not_in_the_list_is_refused(runs, name):
    with pytest.raises(RunOpenError, match="not one of this server's runs"):
        open_run(runs, name)


def test_a_real_run_is_read_whole(runs):
    opened = open_run(runs, NAME)
    cfg = opened.config
    assert set(cfg) == {"version", "network", "training"} and cfg["training"]["task"] == "mnist"
    assert [w.shape for w in opened.weights] == [(30, 784), (10, 30)]
    assert opened.epochs == 1 and "data" not in cfg["training"]  # trained on the sample
    splits = {(r.epoch, r.split) for r in opened.rows}
    assert {(0, "val"), (0, "test"), (1, "val"), (1, "test"), (1, "train")} <= splits
    layers = [r.layer for r in opened.sparsity_rows]
    assert layers == ["input", "layer 1", "layer 2"] * 2  # the test evaluations of epochs 0, 1
    inputs = [r for r in opened.sparsity_rows if r.layer == "input"]
    assert all(math.isnan(r.saturated) for r in inputs)  # the input is never "saturated"
    assert opened.latency is not None and opened.latency.t.size == opened.latency.accuracy.size


def _damage_metrics(p):
    (p / "metrics.csv").write_text("epoch,split,loss,accuracy,step,lr\n0,test,1.0,1.7,0,0.1\n")


def _damage_model(p):
    (p / "model.npz").write_bytes(b"PK\x03\x04 not a zip")


def _damage_config(p):
    (p / "config.json").write_text('{"network": {"layers": []}, "training": {}}')


def _other_network(p):
    text = (p / "config.json").read_text().replace('"size": 30', '"size": 31')
    (p / "config.json").write_text(text)


def _damage_evaluations(p):
    with open(p / "evaluations.jsonl", "a") as f:
        f.write("{not json\n")


@pytest.mark.parametrize(
    "damage, message",
    [
        (_damage_metrics, "metrics.csv line 2: accuracy must be in"),
        (_damage_model, "model.npz"),
        (_damage_config, "config.json: network.layers"),
        (_other_network, "model.npz: .*w0 has shape"),
        (_damage_evaluations, "evaluations.jsonl line"),
    ],
)
def test_a_bad_folder_is_refused_saying_why(copy, damage, message):
    damage(copy / NAME)
    with pytest.raises(RunOpenError, match=message):
        open_run(copy, NAME)


def test_a_full_data_run_is_explored_on_the_sample(runs):
    opened = open_run(runs, NAME)
    full = {**opened.config, "training": {**opened.config["training"], "data": "full"}}
    config, note = explore_config(full)
    assert "data" not in config["training"] and "embedded sample" in note
    assert explore_config(opened.config) == (opened.config, "")


def _poll_until(ctrl, pred, timeout=60.0):
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got += ctrl.poll()
        if pred(got):
            return got
        time.sleep(0.05)
    raise AssertionError(f"not met in {timeout} s: {len(got)} snapshots")


def test_the_controller_explores_a_run_through_the_live_path(runs):
    opened = open_run(runs, NAME)
    view = ViewConfig()
    ctrl = TrainingController(NetworkSpec(), TrainingConfig(), view, Trainer)
    try:
        assert ctrl.open_record(opened, opened.config)
        assert ctrl.status in ("paused", "queued") and ctrl.opened == NAME
        assert ctrl.network.sizes == [30, 10] and ctrl.training.task == "mnist"
        got = _poll_until(ctrl, lambda b: any(s.activity for s in b))
        record = got[0]
        assert record.rows == opened.rows and record.sparsity_rows == opened.sparsity_rows
        live = [s for s in got if s.activity]
        assert all(s.sparsity_rows == () for s in live)  # the history is the record's
        # the model shown is the run's: its first layer's weights are the saved ones
        np.testing.assert_array_equal(ctrl.run.trainer.network.weights[0], opened.weights[0])
        view.sample_index = 7  # any test sample, published by the paused run
        got = _poll_until(ctrl, lambda b: any(s.sample_index == 7 and s.activity for s in b))
        assert ctrl.history[: len(opened.rows)] == list(opened.rows)
    finally:
        ctrl.shutdown()


def test_a_run_over_the_memory_budget_changes_nothing(runs):
    from batscope.training.resources import MemoryBroker, SessionAccount

    opened = open_run(runs, NAME)
    account = SessionAccount(MemoryBroker(10**6, 10**6))  # far below a 784-30-10 run on MNIST
    net, tr = NetworkSpec(), TrainingConfig()
    before = (net.to_dict(), tr.to_dict())
    ctrl = TrainingController(net, tr, ViewConfig(), Trainer, account=account)
    assert not ctrl.open_record(opened, opened.config)
    assert "This run needs" in ctrl.message and ctrl.status == "idle" and ctrl.run is None
    assert (net.to_dict(), tr.to_dict()) == before and ctrl.initial_weights is None
    assert ctrl.opened == "" and account.used == 0
