"""SweepController: the convergence sweep on a worker thread, handed out by poll()."""

import threading
import time

import numpy as np
import pytest
from batscope.engine import convergence
from batscope.engine.slots import TRAINING_SLOTS
from batscope.training.state import SweepConfig, grid_axis
from batscope.training.sweep import SweepCells, SweepController


def tiny(**kw):
    """2 × 2 grid (μ, σ ∈ {0, 0.6}), 3 repeats, 10 epochs."""
    return SweepConfig(mu_max=0.6, sigma_max=0.6, step=0.6, repeats=3, epochs=10, **kw)


def poll_until(ctrl, done=("finished", "stopped", "error"), timeout=60.0):
    """Poll like the session does; returns every batch seen, in order."""
    batches, t0 = [], time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        batch = ctrl.poll()
        if batch:
            batches.append(batch)
        if ctrl.status in done:
            return batches + [ctrl.poll()]
        time.sleep(0.01)
    raise AssertionError(f"status stayed {ctrl.status!r}")


def test_grid_axis_matches_paper_grid():
    assert np.allclose(grid_axis(2.4, 0.2), np.arange(0, 2.5, 0.2))
    assert grid_axis(0.6, 0.6).tolist() == [0.0, 0.6]


def test_status_flow_and_cells_fill_progressively():
    ctrl = SweepController(tiny(), chunk_cells=1)
    assert ctrl.status == "idle" and ctrl.poll() == []
    seen = []
    ctrl.param.watch(lambda e: seen.append(e.new), "status")
    ctrl.start()
    batches = poll_until(ctrl)
    assert ctrl.status == "finished", ctrl.message
    assert seen[0] in ("running", "queued") and seen[-1] == "finished"
    cells = [c for b in batches for c in b]
    assert all(isinstance(c, SweepCells) for c in cells)
    assert len(cells) == 8  # one chunk per cell: 2 variants × 4 cells
    assert ctrl.cells_done == ctrl.cells_total == 8 and ctrl.elapsed_s > 0
    assert {c.variant for c in cells} == {"single", "multi"}
    for c in cells:
        assert c.runs.tolist() == [3] and 0 <= c.accuracy[0] <= 100
        assert c.mu.tolist() == [0.0, 0.6] and c.sigma.tolist() == [0.0, 0.6]
    # the same numbers as the engine's sweep
    multi = [c for c in cells if c.variant == "multi"]
    ref = convergence.run_sweep(ctrl.engine_config("multi"))
    for c in multi:
        assert c.accuracy[0] == pytest.approx(100 * ref.accuracy[c.sigma_index[0], c.mu_index[0]])
    assert not ctrl.alive


def _slow_runner(cfg, chunk_cells=None, callback=None, should_stop=None):
    """Fake run_sweep: one cell per 20 ms until told to stop (or 200 cells)."""
    n_s, n_m = cfg.shape
    for k in range(200):
        if should_stop():
            return
        time.sleep(0.02)
        s, m = divmod(k % (n_s * n_m), n_m)
        callback(np.array([[s, m]]), np.array([0.75]))


def test_stop_keeps_finished_cells_and_shutdown_joins():
    ctrl = SweepController(tiny(), runner=_slow_runner)
    ctrl.start()
    first = []
    t0 = time.perf_counter()
    while not first and time.perf_counter() - t0 < 10:
        first = ctrl.poll()
        time.sleep(0.01)
    assert first and ctrl.status == "running"
    assert first[0].accuracy[0] == 75.0
    ctrl.param.trigger("stop")
    poll_until(ctrl)
    assert ctrl.status == "stopped"
    assert 0 < ctrl.cells_done < 200
    assert ctrl.shutdown() and not ctrl.alive
    assert ctrl.shutdown()  # idempotent


def test_shutdown_while_running_joins_thread():
    ctrl = SweepController(tiny(), runner=_slow_runner)
    ctrl.start()
    assert ctrl.alive
    assert ctrl.shutdown(timeout=5)
    assert not ctrl.alive
    assert not any(t.name == "batscope-sweep" and t.is_alive() for t in threading.enumerate())


def test_error_is_reported():
    def broken(cfg, **kw):
        raise RuntimeError("kernel exploded")

    ctrl = SweepController(tiny(), runner=broken)
    ctrl.param.trigger("run")
    poll_until(ctrl)
    assert ctrl.status == "error" and "kernel exploded" in ctrl.message


def test_queued_while_the_training_cap_is_full():
    held = 0
    while TRAINING_SLOTS.acquire(blocking=False):
        held += 1
    try:
        ctrl = SweepController(tiny())
        ctrl.start()
        assert ctrl.status == "queued"
        time.sleep(0.2)
        assert ctrl.poll() == [] and ctrl.status == "queued"
    finally:
        for _ in range(held):
            TRAINING_SLOTS.release()
    poll_until(ctrl)
    assert ctrl.status == "finished"


def test_drill_down_reproduces_the_sweep_run():
    ctrl = SweepController(
        SweepConfig(mu_max=1.2, sigma_max=0.6, step=0.6, repeats=1, epochs=20), variants=["single"]
    )
    ctrl.start()
    cells = [c for b in poll_until(ctrl) for c in b]
    assert ctrl.cells_total == 6 and {c.variant for c in cells} == {"single"}
    for c in cells:
        trace = ctrl.drill_down("single", int(c.mu_index[0]), int(c.sigma_index[0]), 0)
        assert trace.accuracy.shape == (20,)
        assert 100 * trace.best == pytest.approx(c.accuracy[0])
    with pytest.raises(ValueError):
        ctrl.drill_down("single", 9, 0)
    with pytest.raises(ValueError):
        ctrl.drill_down("both", 0, 0)


def test_backend_goes_to_the_engine_config():
    ctrl = SweepController(tiny())
    assert "cpu" in ctrl.param.backend.objects
    assert ctrl.engine_config("multi").backend == "cpu"
    with pytest.raises(ValueError):
        ctrl.backend = "tpu"
