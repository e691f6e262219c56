"""Every shipped lesson driven end to end on the app object, as a participant would (no browser):
each goal is open when its step is entered and turns met only after the participant's action."""

from __future__ import annotations

import time

import pytest

pn = pytest.importorskip("panel")

from batscope.training.controller import ACTIVE  # noqa: E402

PATTERN0 = {"t": [0.0, 0.0, 1.0, 2.0], "neuron": [0.0, 1.0, 2.0, 3.0]}  # convergence pattern 0


def tick_until(app, done, timeout=240.0):
    end = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < end, "timed out"
        app.session._tick()
        time.sleep(0.05)
    app.session._tick()


def train(app):
    """Press Play and let the run finish (the session's pull loop ticked by hand)."""
    app.controller.param.trigger("start")
    tick_until(app, lambda: app.controller.status not in ACTIVE)
    assert app.controller.status == "finished", app.controller.message


def next_step(app):
    app.lesson.bar.next.clicks += 1


def open_tab(app, tab):
    app.tabs.active = app.lesson.tab_ids.index(tab)


def edit(view, t, neuron):
    """What a drag, click or Delete in the editor's input plot sends."""
    view.points_source.data = {"t": list(t), "neuron": list(neuron)}


def test_lesson_1_lif_neuron(app):
    app.progress.move_to("lif-neuron", 0)
    assert app.preset == "lesson-lif" and app.lesson.tab_ids[app.tabs.active] == "editor"
    ed = app.views["editor"]
    assert not app.progress.goal_met and ed.pattern_t.size == 4
    edit(ed, [0.0, 1.0], [0.0, 2.0])  # two inputs: 1.72 and 1.07 together cross θ
    assert not app.progress.goal_met
    edit(ed, [0.0], [0.0])  # one input alone peaks at w·τ/4 < θ
    assert app.progress.goal_met
    next_step(app)
    assert app.progress.step == 1 and not app.progress.goal_met
    ed.param.trigger("load")
    assert ed.result[-1].counts[0][0] == 1 and not app.progress.goal_met
    edit(ed, [1.0, 0.0, 1.0, 2.0], PATTERN0["neuron"])  # drag input 0 from 0 s to 1 s
    assert ed.result[-1].counts[0][0] >= 2 and app.progress.goal_met


def test_lesson_2_single_multi(app):
    app.progress.move_to("single-multi", 0)
    ed = app.views["editor"]
    assert app.training.loss == "ttfs_ce" and not app.progress.goal_met
    edit(ed, [*PATTERN0["t"], 1.0], [*PATTERN0["neuron"], 0.0])  # a fifth input spike
    assert ed.result[-1].counts[0][0] == 1 and app.progress.goal_met  # S = 1: still one spike
    next_step(app)
    assert not app.progress.goal_met
    assert app.form.inputs["lr"].visible and not app.form.inputs["loss"].visible
    app.network.layers[0].n_max = 10
    assert not app.progress.goal_met  # the editor still runs the S = 1 network
    ed.param.trigger("refresh")  # "Use the current weights"
    assert app.progress.goal_met
    next_step(app)
    assert app.preset == "convergence" and not app.progress.goal_met
    train(app)
    assert app.progress.goal_met


def test_lesson_3_error_flow(app):
    app.progress.move_to("error-flow", 0)
    assert not app.progress.goal_met
    train(app)
    assert app.lesson.run_record.reset_share > 0.01 and app.progress.goal_met
    next_step(app)
    assert app.network.layers[0].n_max == 1 and not app.progress.goal_met
    train(app)
    assert app.lesson.run_record.reset_share == 0 and app.progress.goal_met
    next_step(app)
    assert not app.progress.goal_met
    gc = app.views["gradcheck"]
    gc.param.trigger("check")
    assert gc.result.passed and app.progress.goal_met


def test_lesson_4_convergence(app):
    app.progress.move_to("convergence", 0)
    assert not app.progress.goal_met
    app.sweep.config.repeats = 10
    app.sweep.param.trigger("run")
    tick_until(app, lambda: app.sweep.status not in ("queued", "running"))
    assert app.sweep.status == "finished" and app.progress.goal_met
    next_step(app)
    cv = app.views["convergence"]
    assert not app.progress.goal_met
    cv.drill_down("multi", 1.0, 0.4)  # both variants learn sometimes here
    assert cv.drill is not None and not app.progress.goal_met
    cv.drill_down("single", 1.6, 0.0)  # single-spike fires too early: multi still learns
    assert app.progress.goal_met
    next_step(app)
    assert not app.progress.goal_met
    train(app)  # the preset's μ = 1.0 learns, but the goal asks for μ ≤ 0.6
    assert app.lesson.run_record.best_accuracy["train"] == 100 and not app.progress.goal_met
    app.network.layers[0].param.update(init_mean=0.6, init_std=0.0)
    train(app)
    assert app.progress.goal_met


def test_lesson_5_sparsity_latency(app):
    app.progress.move_to("sparsity-latency", 0)
    assert app.network.sizes == [100, 10] and not app.progress.goal_met
    open_tab(app, "sparsity")
    assert app.progress.goal_met
    next_step(app)
    assert not app.progress.goal_met
    train(app)
    assert app.progress.goal_met
    next_step(app)
    assert not app.progress.goal_met  # the step's preset starts a fresh run
    train(app)
    assert app.lesson.run_record.latency_at_t_enc >= 20 and app.progress.goal_met


def test_lesson_6_precision(app):
    app.progress.move_to("precision", 0)
    pv = app.views["precision"]
    pv.dt = 1e-3
    pv.param.trigger("compare")
    assert pv.at_dt.count_mismatch == 0 and not app.progress.goal_met
    pv.dt = 1.0
    pv.param.trigger("compare")
    assert app.progress.goal_met
    next_step(app)
    assert not app.progress.goal_met
    pv.dt = 1e-2
    pv.param.trigger("compare")  # counts right, times off by several ms
    assert not app.progress.goal_met
    pv.dt = 1e-3
    pv.param.trigger("compare")
    assert app.progress.goal_met
