"""TrainingController with a fake trainer: status transitions, Step, Reset, errors, shutdown."""

from __future__ import annotations

import threading
import time

import pytest
from batscope.engine.slots import TRAINING_SLOTS
from batscope.training.controller import TrainingController
from batscope.training.run import TrainingRun
from batscope.training.state import NetworkSpec, TrainingConfig, ViewConfig

from .fakes import FakeTrainer


def wait_for(pred, ctrl=None, timeout=5.0):
    """Poll (like the session's periodic callback) until ``pred()`` holds."""
    end = time.monotonic() + timeout
    batches = []
    while time.monotonic() < end:
        if ctrl is not None:
            batches.extend(ctrl.poll())
        if pred():
            return batches
        time.sleep(0.005)
    raise AssertionError("condition not reached in time")


def make(epochs=3, **fake_kw):
    cfg = TrainingConfig(epochs=epochs)
    ctrl = TrainingController(
        NetworkSpec(),
        cfg,
        ViewConfig(),
        lambda c: FakeTrainer(c, **fake_kw),
        run_options={"interval_s": 0.0},
    )
    return ctrl


def test_idle_running_paused_finished():
    ctrl = make(epochs=200, delay=0.001)
    assert ctrl.status == "idle"
    ctrl.param.trigger("start")
    assert ctrl.status == "running"
    wait_for(lambda: ctrl.steps > 3, ctrl)
    ctrl.param.trigger("pause")
    assert ctrl.status == "paused"
    time.sleep(0.1)
    ctrl.poll()
    frozen = ctrl.steps
    time.sleep(0.1)
    ctrl.poll()
    assert ctrl.steps == frozen
    ctrl.param.trigger("start")
    assert ctrl.status == "running"
    wait_for(lambda: ctrl.status == "finished", ctrl)
    assert ctrl.epoch == 200 and ctrl.progress == 1.0
    rows = [r for r in ctrl.history if r.split == "train"]
    assert [r.step for r in rows] == list(range(400))  # no row lost
    ctrl.shutdown()


def test_step_runs_exactly_one_batch():
    ctrl = make(epochs=5)
    ctrl.param.trigger("step")
    assert ctrl.status == "paused"
    wait_for(lambda: ctrl.steps == 1, ctrl)
    time.sleep(0.1)
    ctrl.poll()
    assert ctrl.steps == 1 and ctrl.status == "paused"
    ctrl.param.trigger("step")
    wait_for(lambda: ctrl.steps == 2, ctrl)
    time.sleep(0.1)
    ctrl.poll()
    assert ctrl.steps == 2 and ctrl.epoch == 1 and ctrl.batch == 0
    assert len(ctrl.history) == 2
    ctrl.shutdown()


def test_quick_steps_each_train_one_batch():
    """Steps clicked faster than a batch trains are not merged: three clicks, three batches,
    also when a click comes while the previous batch is training."""
    ctrl = make(epochs=20, delay=0.2)
    for _ in range(3):
        ctrl.param.trigger("step")
    wait_for(lambda: ctrl.steps == 3, ctrl, timeout=10.0)
    time.sleep(0.5)
    ctrl.poll()
    assert ctrl.steps == 3 and ctrl.status == "paused"
    ctrl.param.trigger("step")
    ctrl.param.trigger("pause")  # a pause drops the steps not yet begun
    ctrl.param.trigger("start")
    ctrl.param.trigger("pause")
    time.sleep(0.6)
    ctrl.poll()
    settled = ctrl.steps
    time.sleep(0.5)
    ctrl.poll()
    assert ctrl.steps == settled  # nothing left pending runs after the pause
    ctrl.shutdown()


def test_reset_reinitialises_and_clears():
    ctrl = make(epochs=2)
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.status == "finished", ctrl)
    gen = ctrl.generation
    ctrl.param.trigger("reset")
    assert ctrl.status == "idle" and ctrl.steps == 0 and ctrl.history == []
    assert ctrl.generation == gen + 1 and ctrl.run is None
    ctrl.param.trigger("step")
    batches = wait_for(lambda: ctrl.steps == 1, ctrl)
    # a fresh trainer from the seed: the same initial weights as the first run
    assert (
        batches[0].extra["weights0"]
        == FakeTrainer({"training": {"epochs": 1, "seed": 0}}).weights[0]
    )
    ctrl.shutdown()


def test_error_in_trainer_sets_error_status():
    ctrl = make(epochs=10, fail_at=3)
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.status == "error", ctrl)
    assert "boom at step 3" in ctrl.message
    assert ctrl.steps == 3
    ctrl.shutdown()


def test_invalid_config_refused_with_message():
    ctrl = make()
    ctrl.training.y_true = 20  # the default output layer has S = 10
    ctrl.param.trigger("start")
    assert ctrl.status == "idle" and "unreachable" in ctrl.message and ctrl.run is None


def test_shutdown_joins_worker_and_is_idempotent():
    ctrl = make(epochs=10_000, delay=0.001)
    ctrl.param.trigger("start")
    run = ctrl.run
    wait_for(lambda: ctrl.steps > 0, ctrl)
    ctrl.shutdown()
    ctrl.shutdown()
    assert not run.alive and run.done.is_set()
    assert not any(t.name == "batscope-training" and t.is_alive() for t in threading.enumerate())


def test_queued_when_no_slot_free():
    held = 0
    while TRAINING_SLOTS.acquire(blocking=False):
        held += 1
    try:
        ctrl = make(epochs=2)
        ctrl.param.trigger("start")
        assert ctrl.status == "queued"
        time.sleep(0.2)
        ctrl.poll()
        assert ctrl.status == "queued"
    finally:
        for _ in range(held):
            TRAINING_SLOTS.release()
    wait_for(lambda: ctrl.status == "finished", ctrl)
    ctrl.shutdown()


def test_run_reports_exception_text():
    run = TrainingRun(lambda: (_ for _ in ()).throw(FileNotFoundError("no EMNIST files")))
    run.start()
    assert run.done.wait(5)
    assert run.phase == "error" and "no EMNIST files" in run.error_text
    assert run.shutdown()


@pytest.mark.parametrize("value", ["x", "0"])
def test_max_trainings_env_validated(monkeypatch, value):
    from batscope.engine import slots

    monkeypatch.setenv("BATSCOPE_MAX_TRAININGS", value)
    with pytest.raises(ValueError, match="BATSCOPE_MAX_TRAININGS"):
        slots.max_trainings()
