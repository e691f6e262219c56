"""LiveSession without a server: a tick drains the controller into every view; Reset clears them;
sessions opened and destroyed leave no training thread behind."""

from __future__ import annotations

import threading
import time

import param
import pytest
from batscope.training.controller import TrainingController
from batscope.training.state import NetworkSpec, TrainingConfig, ViewConfig

from .fakes import FakeTrainer

pn = pytest.importorskip("panel")
from batscope.app.session import LiveSession  # noqa: E402


class FakeController(param.Parameterized):
    status = param.String("idle")
    generation = param.Integer(0)

    def __init__(self):
        super().__init__()
        self.queue, self.shut = [], 0

    def poll(self):
        out, self.queue = self.queue, []
        return out

    def shutdown(self):
        self.shut += 1


class RecordingView:
    def __init__(self, fail=False):
        self.batches, self.resets, self.fail = [], 0, fail

    def update(self, batch):
        if self.fail:
            raise RuntimeError("broken view")
        self.batches.append(batch)

    def reset(self):
        self.resets += 1


def test_tick_feeds_every_view_once_per_batch():
    ctrl = FakeController()
    good, broken, other = RecordingView(), RecordingView(fail=True), RecordingView()
    sweep = FakeController()
    session = LiveSession([(ctrl, [broken, good]), (sweep, [other])])
    session._tick()
    assert good.batches == [] and other.batches == []  # nothing queued: no update
    ctrl.queue = ["s1", "s2"]
    sweep.queue = ["cells"]
    session._tick()
    assert good.batches == [["s1", "s2"]]  # a broken view does not stop the others
    assert other.batches == [["cells"]]
    ctrl.generation += 1
    assert good.resets == 1 and other.resets == 0
    session._on_destroyed(None)
    assert ctrl.shut == 1 and sweep.shut == 1


def test_session_period_is_at_least_4_hz():
    from batscope.app.session import PERIOD_MS

    assert PERIOD_MS <= 250


def _training_threads():
    return [t for t in threading.enumerate() if t.name == "batscope-training" and t.is_alive()]


def test_open_and_destroy_sessions_leaves_no_threads():
    base = threading.active_count()
    sessions = []
    for _ in range(5):
        ctrl = TrainingController(
            NetworkSpec(),
            TrainingConfig(epochs=10_000),
            ViewConfig(),
            lambda c: FakeTrainer(c, delay=0.002),
        )
        sessions.append((ctrl, LiveSession([(ctrl, [RecordingView()])])))
        ctrl.param.trigger("start")
    time.sleep(0.2)
    assert len(_training_threads()) == 5
    for _ctrl, session in sessions:
        session._on_destroyed(None)
    assert _training_threads() == []
    assert threading.active_count() <= base


def _snap(step, heavy=False, sparsity=False):
    import numpy as np
    from batscope.engine.analysis import LayerSparsity
    from batscope.training.telemetry import LayerActivity, MetricRow, Snapshot

    act = (LayerActivity("input", np.zeros((1, 1)), np.zeros(1, dtype=np.int32)),)
    sp = (LayerSparsity("l", 1.0, 1.0, 0.0, 0.0, np.ones(1)),) if sparsity else ()
    return Snapshot(
        step=step,
        epoch=0,
        batch=0,
        n_batches=1,
        epochs=1,
        rows=(MetricRow(step, 0, "train", 1.0, 0.5),),
        activity=act if heavy else (),
        sparsity=sp,
    )


def test_view_gate_holds_hidden_updates_and_keeps_every_row():
    from batscope.app.session import ViewGate

    shown = {"on": False}
    view = RecordingView()
    built = []
    gate = ViewGate(lambda: built.append(1) or view, lambda: shown["on"])
    gate.update([_snap(0, heavy=True, sparsity=True), _snap(1, heavy=True)])
    gate.update([_snap(2)])
    assert view.batches == [] and built == []  # a hidden view is not even built
    shown["on"] = True
    gate.flush()
    (batch,) = view.batches
    assert [s.step for s in batch] == [0, 1, 2]  # every metric row is delivered
    assert batch[0].activity == () and batch[1].activity == ()  # older heavy parts dropped
    assert batch[-1].activity and batch[-1].sparsity  # newest carries the latest of each
    gate.update([_snap(3)])
    assert [s.step for s in view.batches[-1]] == [3]  # shown: straight through
    gate.reset()
    assert view.resets == 1
    shown["on"] = False  # hidden: the reset waits, and rows after it are kept
    gate.update([_snap(4)])
    gate.reset()
    gate.update([_snap(5)])
    assert view.resets == 1
    shown["on"] = True
    gate.flush()
    assert view.resets == 2 and [s.step for s in view.batches[-1]] == [5]
