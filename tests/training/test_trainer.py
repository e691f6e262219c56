"""Trainer on real engine code: the convergence task trains to 100 % (strict), one step = one
batch, snapshots are NumPy-only and complete, image tasks run on the embedded sample."""

from __future__ import annotations

import numpy as np
import pytest
from batscope.app.presets import load_preset
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig, run_config
from batscope.training.trainer import Trainer


def convergence_config(**training):
    cfg = load_preset("convergence").config
    return {**cfg, "training": {**cfg["training"], **training}}


def test_convergence_task_reaches_100_percent_strict():
    tr = Trainer(convergence_config(predict="strict"))
    assert tr.batch_size == 2 and tr.n_batches == 1  # full batch
    rows = [tr.step() for _ in range(tr.epochs)]
    assert tr.finished and tr.epoch == 50
    assert max(r.accuracy for r in rows) == 1.0  # the paper's metric: best over the epochs


def test_step_runs_exactly_one_batch_and_updates_weights():
    cfg = run_config(
        NetworkSpec(
            layers=[
                LayerSpec(size=20, tau_s=0.13, theta=0.1, n_max=5),
                LayerSpec(size=10, tau_s=0.13, theta=0.1, n_max=5),
            ]
        ),
        TrainingConfig(
            task="mnist",
            t_max=0.2,
            y_true=5,
            y_false=1,
            n_train=40,
            val_fraction=0.25,
            batch_size=10,
            epochs=2,
            optimizer="adam",
            lr=0.01,
        ),
    )
    tr = Trainer(cfg)
    assert tr.n_batches == 3  # 30 training samples, batch 10
    w0 = [w.copy() for w in tr.network.weights]
    row = tr.step()
    assert (tr.step_count, tr.batch, tr.epoch) == (1, 1, 0)
    assert row.split == "train" and 0 <= row.accuracy <= 1
    assert any(not np.array_equal(a, b) for a, b in zip(w0, tr.network.weights, strict=True))
    tr.step()
    tr.step()
    splits = [r.split for r in tr.history]
    assert splits == ["train", "train", "train", "val", "test"]  # evaluation at the epoch end


def test_snapshot_is_numpy_and_complete():
    tr = Trainer(convergence_config())
    tr.step()
    snap = tr.snapshot(sample_index=1, layer=1, neurons=[0, 1, 5], heavy=True)
    assert snap.sample_index == 1 and snap.label == 1
    assert [a.name for a in snap.activity] == ["input", "layer 1"]
    assert snap.activity[0].times.shape == (4, 1)
    assert snap.errors[0].delta.shape == snap.activity[1].times.shape
    np.testing.assert_allclose(snap.errors[0].delta, snap.errors[0].phi + snap.errors[0].mu)
    assert list(snap.membrane.neurons) == [0, 1]  # out-of-range neuron 5 dropped
    assert snap.membrane.u.shape == (2, snap.membrane.t.size)
    assert [s.name for s in snap.sparsity] == ["input", "layer 1"]
    assert snap.latency.accuracy.shape == snap.latency.t.shape
    assert snap.weights[0].shape == (2, 4)
    assert [r.step for r in snap.rows] == [0]
    assert tr.snapshot().rows == ()  # rows are handed out once
    for arr in (snap.activity[1].times, snap.membrane.u, snap.weights[0]):
        assert type(arr) is np.ndarray


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_snapshots_weights_stay_as_they_were_at_its_step(dtype):
    """The optimiser updates the network's weights in place: a snapshot (read by the views on
    another thread, later) holds copies, not the live arrays."""
    tr = Trainer(convergence_config(dtype=dtype))
    snap = tr.snapshot(heavy=True)
    kept = [w.copy() for w in snap.weights]
    assert all(w is not live for w, live in zip(snap.weights, tr.network.weights, strict=True))
    tr.step()
    assert any(not np.array_equal(a, b) for a, b in zip(kept, tr.network.weights, strict=True))
    for a, b in zip(kept, snap.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_seed_reproduces_a_run():
    a, b = Trainer(convergence_config(seed=3)), Trainer(convergence_config(seed=3))
    ra = [a.step().loss for _ in range(5)]
    rb = [b.step().loss for _ in range(5)]
    assert ra == rb


def test_emnist_without_files_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path))
    cfg = run_config(NetworkSpec(layers=[LayerSpec(size=47)]), TrainingConfig(task="emnist"))
    with pytest.raises(FileNotFoundError):
        Trainer(cfg)


def test_every_epoch_end_records_sparsity_latency_and_health_without_a_view():
    tr = Trainer(convergence_config(epochs=3))
    for _ in range(3):
        tr.step()
    assert [(e.row.epoch, e.row.split) for e in tr.evaluations] == [
        (1, "train"),
        (2, "train"),
        (3, "train"),
    ]
    assert all(r.split == "train" and r.step == i for i, r in enumerate(tr.history))  # steps only
    ev = tr.evaluations[-1]
    assert [s.name for s in ev.sparsity] == ["input", "layer 1"]
    assert ev.latency.accuracy.shape == (101,) and ev.health.dead_fraction == ()
    snap = tr.snapshot(heavy=False)  # light snapshot: no view asked for population statistics
    assert snap.sparsity == () and len(snap.evaluations) == 3
    assert tr.snapshot().evaluations == ()  # handed over once
