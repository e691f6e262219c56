"""The memory budget: budgets from the environment, refusal messages, and reservations released
on every path (finished, stopped, failed, exception, session destroyed)."""

from __future__ import annotations

import threading
import time

import pytest
from batscope.engine.slots import TRAINING_SLOTS, SlotPool
from batscope.training import resources
from batscope.training.controller import TrainingController
from batscope.training.resources import BudgetRefused, MemoryBroker, SessionAccount
from batscope.training.state import LayerSpec, NetworkSpec, SweepConfig, TrainingConfig, ViewConfig
from batscope.training.sweep import SweepController

from .fakes import FakeTrainer
from .test_controller import wait_for

GB = 10**9


def account(budget=4 * GB, per_session=2 * GB):
    return SessionAccount(MemoryBroker(budget, per_session))


def controller(acct, epochs=10_000, factory=None, **fake):
    return TrainingController(
        NetworkSpec(),
        TrainingConfig(epochs=epochs),
        ViewConfig(),
        factory or (lambda c: FakeTrainer(c, **fake)),
        run_options={"interval_s": 0.0, "slots": SlotPool(4)},
        account=acct,
    )


# ---- budgets from the environment ---------------------------------------------------------------
def test_server_budget_from_env_with_units(monkeypatch):
    monkeypatch.setenv("BATSCOPE_MEMORY_BUDGET", "2GB")
    assert resources.server_budget() == 2 * GB
    monkeypatch.setenv("BATSCOPE_MEMORY_BUDGET", "1.5 GiB")
    assert resources.server_budget() == int(1.5 * 2**30)
    monkeypatch.setenv("BATSCOPE_MEMORY_BUDGET", "123456")
    assert resources.server_budget() == 123456


def test_default_budgets_follow_the_machine(monkeypatch):
    monkeypatch.delenv("BATSCOPE_MEMORY_BUDGET", raising=False)
    monkeypatch.delenv("BATSCOPE_SESSION_MEMORY_BUDGET", raising=False)
    monkeypatch.setattr(resources, "physical_memory", lambda: 16 * GB)
    assert resources.server_budget() == 8 * GB  # half of the machine
    assert resources.session_budget(8 * GB) == 8 * GB // TRAINING_SLOTS.capacity
    monkeypatch.setenv("BATSCOPE_SESSION_MEMORY_BUDGET", "500MB")
    assert resources.session_budget(8 * GB) == 500 * 10**6
    assert resources.physical_memory() > 0  # this machine says how much it has


@pytest.mark.parametrize("value", ["lots", "-1GB", "2 parsecs", "0"])
def test_bad_budget_env_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("BATSCOPE_MEMORY_BUDGET", value)
    with pytest.raises(ValueError, match="BATSCOPE_MEMORY_BUDGET"):
        resources.server_budget()
    monkeypatch.setenv("BATSCOPE_SESSION_MEMORY_BUDGET", value)
    with pytest.raises(ValueError, match="BATSCOPE_SESSION_MEMORY_BUDGET"):
        resources.session_budget(GB)


# ---- the broker ---------------------------------------------------------------------------------
def test_refusals_say_what_was_asked_and_what_fits():
    broker = MemoryBroker(4 * GB, 2 * GB)
    a, b, c = SessionAccount(broker), SessionAccount(broker), SessionAccount(broker)
    with pytest.raises(BudgetRefused) as exc:
        a.reserve(3_100_000_000, "this run", "lower the batch")
    assert str(exc.value) == (
        "This run needs 3.1 GB; a session may use at most 2.0 GB, or lower the batch."
    )
    r1 = a.reserve(int(1.5 * GB), "this run")
    r2 = b.reserve(int(1.3 * GB), "this run")
    with pytest.raises(BudgetRefused) as exc:
        c.reserve(int(1.8 * GB), "this sweep", "lower the repeats")
    assert str(exc.value) == (
        "This sweep needs 1.8 GB; 1.2 GB is free of the server's 4.0 GB budget while other "
        "runs go: wait for them, or lower the repeats."
    )
    with pytest.raises(BudgetRefused, match="this session already holds 1.5 GB of its 2.0 GB"):
        a.reserve(int(0.6 * GB), "this check")
    assert broker.used == int(2.8 * GB) and a.used == int(1.5 * GB)
    r3 = c.reserve(int(1.2 * GB), "this sweep")  # exactly what is free fits
    r1.release()
    r1.release()  # idempotent
    assert broker.used == int(2.5 * GB)
    for r in (r2, r3):
        r.release()
    assert broker.used == 0


def test_a_replaced_reservation_does_not_count_against_its_successor():
    acct = account(4 * GB, 2 * GB)
    old = acct.reserve(int(1.5 * GB), "this sweep")
    with pytest.raises(BudgetRefused):
        acct.reserve(int(1.5 * GB), "this sweep")
    new = acct.reserve(int(1.5 * GB), "this sweep", replaces=old)
    old.release()
    assert acct.used == int(1.5 * GB)
    new.release()
    assert acct.used == 0


def test_a_with_block_releases_on_exception():
    acct = account()
    with pytest.raises(RuntimeError), acct.reserve(GB, "this check"):
        assert acct.used == GB
        raise RuntimeError("the check failed")
    assert acct.used == 0


# ---- estimates ----------------------------------------------------------------------------------
def test_training_estimate_grows_with_batch_buffer_and_layers():
    net, tr = NetworkSpec(), TrainingConfig(task="mnist", batch_size=50)
    net.layers = [LayerSpec(size=100, n_max=10), LayerSpec(size=10, n_max=10)]
    base = resources.training_estimate({"network": net.to_dict(), "training": tr.to_dict()})
    assert base.total == sum(base.parts.values()) and base.parts["data"] > 0
    for change in (
        lambda: setattr(tr, "batch_size", 500),
        lambda: setattr(net.layers[0], "n_max", 100),
        lambda: setattr(net.layers[0], "size", 1000),
    ):
        before = resources.training_estimate({"network": net.to_dict(), "training": tr.to_dict()})
        change()
        after = resources.training_estimate({"network": net.to_dict(), "training": tr.to_dict()})
        assert after.total > before.total


def test_the_issues_66_gb_layer_is_refused_before_anything_is_built():
    built = []
    acct = account(4 * GB, 2 * GB)
    ctrl = controller(acct, factory=lambda c: built.append(c))
    ctrl.training.param.update(task="mnist", batch_size=4096)
    ctrl.network.layers = [LayerSpec(size=4096, n_max=1000), LayerSpec(size=10, n_max=30)]
    ctrl.param.trigger("start")
    assert ctrl.status == "idle" and ctrl.run is None and built == []
    assert ctrl.message.startswith("This run needs ")
    assert "a session may use at most 2.0 GB" in ctrl.message
    assert "lower the batch size, the layer sizes or the spike buffers S" in ctrl.message
    assert acct.used == 0


# ---- reservations end with the work -------------------------------------------------------------
def test_run_reservation_released_when_finished_stopped_failed_or_reset():
    acct = account()
    gate = threading.Event()

    def gated(config):  # the worker builds its trainer only once the test has looked
        assert gate.wait(5)
        return FakeTrainer(config)

    ctrl = controller(acct, epochs=2, factory=gated)
    ctrl.param.trigger("start")
    assert acct.used > 0
    gate.set()
    wait_for(lambda: ctrl.status == "finished", ctrl)
    wait_for(lambda: acct.used == 0)

    ctrl = controller(acct, delay=0.002)
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.steps > 0, ctrl)
    held = acct.used
    ctrl.param.trigger("stop")
    wait_for(lambda: acct.used == 0)
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.steps > 0, ctrl)
    assert acct.used == held
    ctrl.param.trigger("reset")
    wait_for(lambda: acct.used == 0)

    ctrl = controller(acct, fail_at=1)
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.status == "error", ctrl)
    wait_for(lambda: acct.used == 0)


def test_run_reservation_released_when_building_the_trainer_raises():
    acct = account()

    def broken(config):
        raise MemoryError("no room for the data")

    ctrl = controller(acct, factory=broken)
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.status == "error", ctrl)
    assert "no room for the data" in ctrl.message
    wait_for(lambda: acct.used == 0)


def test_restart_replaces_the_reservation_of_the_run_it_stops():
    config = {"network": NetworkSpec().to_dict(), "training": TrainingConfig().to_dict()}
    est = resources.training_estimate(config).total
    acct = account(4 * GB, int(1.5 * est))  # room for one run, not two
    ctrl = controller(acct, delay=0.002)
    ctrl.param.trigger("start")
    wait_for(lambda: ctrl.steps > 0, ctrl)
    ctrl.param.trigger("reset")
    ctrl.param.trigger("start")  # the old run may still be ending: it is not counted twice
    assert ctrl.status in ("running", "queued"), ctrl.message
    wait_for(lambda: ctrl.steps > 0, ctrl)
    ctrl.shutdown()
    wait_for(lambda: acct.used == 0)


def test_session_destroyed_releases_a_paused_run_and_a_sweep():
    acct = account()
    ctrl = controller(acct)
    ctrl.param.trigger("step")
    wait_for(lambda: ctrl.steps == 1, ctrl)
    sweep = SweepController(
        SweepConfig(mu_max=0.6, sigma_max=0.6, step=0.6, repeats=1, epochs=2),
        runner=_forever,
        account=acct,
    )
    sweep.start()
    assert acct.used > 0
    ctrl.shutdown()  # what LiveSession does when the session is destroyed
    assert sweep.shutdown(timeout=5)
    assert acct.used == 0


def _forever(cfg, chunk_cells=None, callback=None, should_stop=None):
    while not should_stop():
        time.sleep(0.01)


def test_sweep_refused_or_released_on_every_end():
    small = SweepConfig(mu_max=0.6, sigma_max=0.6, step=0.6, repeats=1, epochs=2)
    acct = account(GB, 1000)  # 1 kB: no sweep fits
    sweep = SweepController(small, runner=_forever, account=acct)
    sweep.param.trigger("run")
    assert sweep.status == "idle" and not sweep.alive
    assert sweep.message.startswith("This sweep needs ")
    assert "lower the repeats or coarsen the grid step" in sweep.message

    def broken(cfg, **kw):
        raise RuntimeError("kernel exploded")

    acct = account()
    for runner, end in ((broken, "error"), (_forever, "stopped")):
        sweep = SweepController(small, runner=runner, account=acct)
        sweep.start()
        if end == "stopped":
            sweep.request_stop()
        wait_for(lambda s=sweep, e=end: s.status == e, sweep)
        wait_for(lambda: acct.used == 0)


# ---- the gradient check and the builder ---------------------------------------------------------
def test_gradient_check_refused_or_released():
    from batscope.widgets.gradcheck import GradCheckView

    acct = account(GB, 1000)  # 1 kB: no check fits
    ctrl = controller(acct)
    view = GradCheckView(reserve=ctrl.reserve_check)
    assert view.run_check() is None and view.result is None
    assert view.summary.object.startswith("**Cannot run the check:** This check needs ")
    assert "check fewer samples" in view.summary.object and acct.used == 0

    acct = account()
    ctrl = controller(acct)
    seen = []

    def network():  # the check runs inside its reservation
        seen.append(acct.used)
        return None

    view = GradCheckView(network_provider=network, reserve=ctrl.reserve_check)
    assert view.run_check() is not None
    assert seen[0] > 0 and acct.used == 0

    def broken():
        raise ValueError("no network")

    view = GradCheckView(network_provider=broken, reserve=ctrl.reserve_check)
    assert view.run_check() is None and "no network" in view.summary.object
    assert acct.used == 0


def test_builder_shows_the_estimate_and_follows_changes():
    pytest.importorskip("panel")
    from batscope.engine.memory import format_bytes
    from batscope.widgets.builder import NetworkBuilder

    net, tr = NetworkSpec(), TrainingConfig()
    builder = NetworkBuilder(net, tr, account=account(4 * GB, 2 * GB))
    text = builder._memory.object

    def expected():
        est = resources.training_estimate({"network": net.to_dict(), "training": tr.to_dict()})
        return f"a run needs about {format_bytes(est.total)}"

    assert expected() in text and "of this session's 2.0 GB" in text
    tr.task = "mnist"
    assert builder._memory.object != text and expected() in builder._memory.object
    net.layers[0].n_max = 1000
    tr.batch_size = 4096
    net.layers[0].size = 4096
    assert expected() in builder._memory.object
    assert "more than this session's 2.0 GB budget: Play will be refused" in builder._memory.object


def test_model_load_reservation():
    acct = account(4 * GB, 2 * GB)
    ctrl = controller(acct)
    big = [LayerSpec(size=4096), LayerSpec(size=4096), LayerSpec(size=10)]
    with pytest.raises(BudgetRefused, match=r"^This model needs 8\.4 GB; .*load a smaller model"):
        ctrl.reserve_model(60_000, big)  # 8 bytes × 4 copies × (60000·4096 + 4096² + 40960)
    with ctrl.reserve_model(784, [LayerSpec(size=800), LayerSpec(size=10)]) as r:
        assert acct.used == r.nbytes == 4 * 8 * (784 * 800 + 800 * 10)
    assert acct.used == 0
