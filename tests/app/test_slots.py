"""Fair training slots: first come first served, queue places, paused runs give their slot back,
and no path (stop, error, restart, a worker that outlasts any timeout) keeps a slot."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from batscope.engine import slots as slots_mod
from batscope.engine.slots import TRAINING_SLOTS, SlotPool
from batscope.training.controller import TrainingController
from batscope.training.run import TrainingRun
from batscope.training.state import NetworkSpec, SweepConfig, TrainingConfig, ViewConfig
from batscope.training.sweep import SweepController

from .fakes import FakeTrainer
from .test_controller import wait_for

GRACE = 0.3


def make(pool, epochs=10_000, delay=0.002, grace=GRACE):
    return TrainingController(
        NetworkSpec(),
        TrainingConfig(epochs=epochs),
        ViewConfig(),
        lambda c: FakeTrainer(c, delay=delay),
        run_options={"interval_s": 0.0, "slots": pool, "grace_s": grace},
    )


def wait_all(pred, ctrls, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for c in ctrls:
            c.poll()
        if pred():
            return
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


# ---- the pool ---------------------------------------------------------------------------------
def test_pool_serves_first_come_first_served_with_places():
    pool = SlotPool(1)
    a = pool.ticket()
    b, c = pool.ticket(), pool.ticket()
    assert a.holding and (a.position, b.position, c.position) == (0, 1, 2)
    assert not b.wait(0.01)
    assert not pool.acquire(blocking=False)  # an anonymous caller never jumps the queue
    a.leave()
    assert b.holding and not c.holding and c.position == 1
    c.leave()  # leaving the queue gives up the place, holds nothing
    assert c.position == 0 and pool.waiting == 0
    b.leave()
    b.leave()  # idempotent
    assert pool.free == 1


def test_pool_semaphore_interface_and_overrelease():
    pool = SlotPool(2)
    assert pool.acquire(blocking=False) and pool.acquire(timeout=0.1)
    assert not pool.acquire(timeout=0.05)
    assert pool.waiting == 0  # the timed-out waiter left the queue
    pool.release()
    pool.release()
    assert pool.free == 2
    with pytest.raises(ValueError, match="released more often"):
        pool.release()
    with pytest.raises(ValueError, match="at least 1"):
        SlotPool(0)


@pytest.mark.parametrize("value", ["x", "-1", "1e9"])
def test_grace_env_validated(monkeypatch, value):
    monkeypatch.setenv("BATSCOPE_SLOT_GRACE_S", value)
    with pytest.raises(ValueError, match="BATSCOPE_SLOT_GRACE_S"):
        slots_mod.slot_grace_s()


def test_grace_env_default_and_value(monkeypatch):
    monkeypatch.delenv("BATSCOPE_SLOT_GRACE_S", raising=False)
    assert slots_mod.slot_grace_s() == slots_mod.DEFAULT_SLOT_GRACE_S == 10.0
    monkeypatch.setenv("BATSCOPE_SLOT_GRACE_S", "2.5")
    assert slots_mod.slot_grace_s() == 2.5


# ---- runs -------------------------------------------------------------------------------------
def test_four_stepped_runs_do_not_block_a_fifth_after_the_grace_period():
    pool = SlotPool(4)
    stepped = [make(pool, grace=1.0) for _ in range(4)]
    for c in stepped:
        c.param.trigger("step")
    wait_all(lambda: all(c.steps == 1 for c in stepped), stepped)
    assert all(c.status == "paused" for c in stepped)
    fifth = make(pool, epochs=3)
    fifth.param.trigger("start")
    # within the grace period the stepped runs keep their slots: the fifth waits, first in line
    assert fifth.status == "queued" and fifth.queue_position == 1
    assert "place 1 in the queue" in fifth.message
    wait_all(lambda: fifth.status == "finished", [fifth, *stepped], timeout=6)
    assert all(not c.run.has_slot and c.status == "paused" for c in stepped)
    assert pool.free == 4
    # a stepped run steps again: it takes a slot again, and gives it back again
    stepped[0].param.trigger("step")
    wait_all(lambda: stepped[0].steps == 2, stepped)
    for c in [*stepped, fifth]:
        c.shutdown()
    assert pool.free == 4 and pool.waiting == 0


def test_resume_queues_for_a_slot_and_reports_the_place():
    pool = SlotPool(1)
    a, b, c = make(pool), make(pool), make(pool)
    a.param.trigger("start")
    wait_for(lambda: a.steps > 0, a)
    b.param.trigger("start")
    c.param.trigger("start")
    assert (b.status, b.queue_position, c.status, c.queue_position) == ("queued", 1, "queued", 2)
    assert "place 2 in the queue" in c.message
    a.param.trigger("pause")  # after the grace period, b (first in line) gets a's slot
    wait_all(lambda: b.status == "running" and b.steps > 0, [a, b, c], timeout=GRACE + 5)
    assert b.message == "" and b.queue_position == 0
    assert c.status == "queued" and c.queue_position == 1
    a.param.trigger("start")  # a resumes: it queues behind c
    wait_all(lambda: a.status == "queued" and a.queue_position == 2, [a, b, c])
    assert "place 2 in the queue" in a.message
    a.param.trigger("pause")  # paused while queued: it leaves the queue
    wait_all(lambda: a.status == "paused" and a.queue_position == 0, [a, b, c])
    assert pool.waiting == 1
    b.param.trigger("stop")
    wait_all(lambda: c.status == "running", [a, b, c])
    for ctrl in (a, b, c):
        ctrl.shutdown()
    assert pool.free == 1 and pool.waiting == 0


def test_each_step_clicked_while_queued_shows_at_once():
    """Steps clicked while the run waits for a slot: each click changes what the page says at
    once (a second click used to leave the line as it was, as if it had been lost)."""
    pool = SlotPool(1)
    a, b = make(pool), make(pool)
    a.param.trigger("start")
    wait_for(lambda: a.steps > 0, a)
    b.param.trigger("step")
    assert b.status == "queued" and "place 1 in the queue. 1 step to train then." in b.message
    b.param.trigger("step")
    assert b.message.endswith("place 1 in the queue. 2 steps to train then.")
    a.param.trigger("stop")
    wait_all(lambda: b.steps == 2 and b.status == "paused", [a, b])
    assert b.message == ""
    for ctrl in (a, b):
        ctrl.shutdown()
    assert pool.free == 1 and pool.waiting == 0


def test_stop_and_error_and_restart_give_the_slot_back():
    pool = SlotPool(1)
    a = make(pool)
    a.param.trigger("start")
    wait_for(lambda: a.steps > 0, a)
    a.param.trigger("start")  # running: Play does nothing
    old = a.run
    a.param.trigger("stop")  # returns at once; the worker ends after its batch
    assert a.run is None and a.status == "finished"
    assert old.done.wait(5) and pool.free == 1
    a.param.trigger("start")
    wait_for(lambda: a.steps > 0, a)
    first = a.run
    a.param.trigger("reset")
    a.param.trigger("start")  # the new run's worker waits for the old one, not this call
    assert first.done.wait(5)
    wait_for(lambda: a.steps > 0, a)
    a.shutdown()
    assert pool.free == 1
    failing = TrainingController(
        NetworkSpec(),
        TrainingConfig(epochs=10),
        ViewConfig(),
        lambda c: FakeTrainer(c, fail_at=2),
        run_options={"interval_s": 0.0, "slots": pool},
    )
    failing.param.trigger("start")
    wait_for(lambda: failing.status == "error", failing)
    assert pool.free == 1


class StuckTrainer(FakeTrainer):
    """The first trainer's second batch blocks until ``gate`` is set (outlasts any timeout)."""

    gate = threading.Event()
    made = 0

    def __init__(self, config):
        super().__init__(config)
        StuckTrainer.made += 1
        self.first = StuckTrainer.made == 1

    def step(self):
        if self.first and self.step_count == 1:
            assert StuckTrainer.gate.wait(10)
        return super().step()


def test_play_after_stop_returns_at_once_while_the_old_batch_runs():
    pool = SlotPool(1)
    ctrl = TrainingController(
        NetworkSpec(),
        TrainingConfig(epochs=10_000),
        ViewConfig(),
        StuckTrainer,
        run_options={"interval_s": 0.0, "slots": pool},
    )
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.steps == 1, ctrl)
    old = ctrl.run
    t0 = time.perf_counter()
    ctrl.param.trigger("stop")
    ctrl.param.trigger("start")  # the old worker is stuck in its batch: nothing waits here
    assert time.perf_counter() - t0 < 0.5
    assert ctrl.status == "queued" and old.alive and pool.free == 0
    time.sleep(0.2)
    ctrl.poll()
    assert ctrl.status == "queued" and ctrl.steps == 0  # the new run waits for the old one
    StuckTrainer.gate.set()
    wait_for(lambda: ctrl.status == "running" and ctrl.steps > 0, ctrl)
    assert not old.alive
    ctrl.shutdown()
    assert pool.free == 1


def test_a_run_that_cannot_start_its_worker_gives_everything_back(monkeypatch):
    pool, ended = SlotPool(1), []
    run = TrainingRun(FakeTrainer, slots=pool, on_end=lambda: ended.append(1))

    def refuse():
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(run._thread, "start", refuse)
    with pytest.raises(RuntimeError):
        run.start()
    assert pool.free == 1 and ended == [1] and run.done.is_set()


# ---- the sweep --------------------------------------------------------------------------------
def tiny():
    return SweepConfig(mu_max=0.6, sigma_max=0.6, step=0.6, repeats=1, epochs=2)


class GatedRunner:
    """Fake run_sweep: the first call sends one cell, then blocks (ignoring should_stop, as a
    long chunk does) until ``gate`` is set; later calls finish at once."""

    def __init__(self):
        self.gate, self.calls, self.blocked = threading.Event(), 0, threading.Event()

    def __call__(self, cfg, chunk_cells=None, callback=None, should_stop=None):
        self.calls += 1
        if self.calls == 1:
            callback(np.array([[0, 0]]), np.array([0.25]))
            self.blocked.set()
            assert self.gate.wait(10)
            callback(np.array([[0, 1]]), np.array([0.25]))  # a late chunk of the old sweep
            return
        n_s, n_m = cfg.shape
        for s in range(n_s):
            for m in range(n_m):
                callback(np.array([[s, m]]), np.array([1.0]))


def drain(ctrl, done=("finished", "stopped", "error"), timeout=10.0):
    cells, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        cells += [c for c in ctrl.poll()]
        if ctrl.status in done:
            return cells
        time.sleep(0.01)
    raise AssertionError(f"status stayed {ctrl.status!r}")


def test_sweep_restart_returns_at_once_and_leaks_no_slot():
    free0 = TRAINING_SLOTS.free
    runner = GatedRunner()
    ctrl = SweepController(tiny(), runner=runner, variants=["single"])
    ctrl.start()
    assert runner.blocked.wait(5)
    old_id = ctrl.sweep_id
    t0 = time.perf_counter()
    ctrl.start()  # the old worker is stuck in its chunk: no waiting here
    assert time.perf_counter() - t0 < 0.5
    assert ctrl.status == "queued" and TRAINING_SLOTS.free == free0 - 1
    time.sleep(0.2)
    ctrl.poll()
    assert ctrl.status == "queued"  # the new sweep waits for the old worker
    runner.gate.set()
    cells = drain(ctrl)
    assert ctrl.status == "finished", ctrl.message
    assert {c.sweep_id for c in cells} == {old_id + 1}  # nothing of the old sweep shows
    assert all(c.accuracy[0] == 100.0 for c in cells) and ctrl.cells_done == 4
    assert ctrl.shutdown()
    assert TRAINING_SLOTS.free == free0


def test_sweep_shutdown_timeout_does_not_leak_the_slot():
    free0 = TRAINING_SLOTS.free
    runner = GatedRunner()
    ctrl = SweepController(tiny(), runner=runner, variants=["single"])
    ctrl.start()
    assert runner.blocked.wait(5)
    assert not ctrl.shutdown(timeout=0.1)  # the chunk outlasts the timeout
    assert TRAINING_SLOTS.free == free0 - 1
    runner.gate.set()
    wait_for(lambda: not ctrl.alive)
    assert TRAINING_SLOTS.free == free0


def test_sweep_reports_its_place_in_the_queue():
    held = []
    while TRAINING_SLOTS.acquire(blocking=False):
        held.append(1)
    ticket = TRAINING_SLOTS.ticket()  # someone is already waiting
    try:
        ctrl = SweepController(tiny(), runner=GatedRunner(), variants=["single"])
        ctrl.start()
        assert ctrl.status == "queued" and ctrl.queue_position == 2
        assert "Place 2 in the queue" in ctrl.message
        ticket.leave()
        ctrl.poll()
        assert ctrl.queue_position == 1 and "Place 1 in the queue" in ctrl.message
        ctrl.request_stop()
        drain(ctrl)
        assert ctrl.status == "stopped" and ctrl.queue_position == 0
    finally:
        ticket.leave()
        for _ in held:
            TRAINING_SLOTS.release()
    assert TRAINING_SLOTS.waiting == 0
