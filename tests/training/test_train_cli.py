"""``batscope train`` on tiny configurations (seconds): progress, run folder, resume after kill -9,
refusals, collapse alerts and remedies."""

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from batscope.app.cli import main
from batscope.app.presets import load_preset
from batscope.datasets import encode_ttfs, load_sample
from batscope.engine.backend import to_numpy
from batscope.engine.network import Network
from batscope.training.augmentation import elastic_batch
from batscope.training.checkpoint import read_checkpoint
from batscope.training.cli import add_train_parser, run_configs
from batscope.training.experiments import experiment_config
from batscope.training.files import config_bytes
from batscope.training.runconfig import validate_run_config
from batscope.training.runner import RunSession
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig, run_config


def tiny_config(tmp_path, name="tiny", out_theta=0.4, **training) -> Path:
    """A 784-30-10 MNIST run on the embedded sample, saved as the app saves configurations."""
    net = NetworkSpec(
        layers=[
            LayerSpec(size=30, tau_s=0.13, theta=0.2, n_max=10),
            LayerSpec(size=10, tau_s=0.13, theta=out_theta, n_max=10),
        ]
    )
    tr = TrainingConfig(
        task="mnist",
        t_max=0.2,
        loss="spike_count",
        y_true=8,
        y_false=2,
        optimizer="adam",
        lr=0.003,
        batch_size=10,
        epochs=3,
        n_train=300,
        val_fraction=0.2,
        seed=0,
        dtype="float64",
    )
    tr.param.update(**training)
    path = tmp_path / f"{name}.json"
    path.write_bytes(config_bytes(run_config(net, tr)))
    return path


def train(*args) -> int:
    return main(["train", *map(str, args)])


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_progress_and_run_folder(tmp_path, capsys):
    cfg = tiny_config(tmp_path)
    assert train("--config", cfg, "--out", tmp_path / "runs") == 0
    err = capsys.readouterr().err
    assert "epoch 3/3" in err and "samples/s" in err and "100%" in err
    # not a terminal (a log file): the bar is drawn when the epoch starts and ends, not at
    # each of its 24 steps (a background run's log stays small)
    assert err.count("epoch 1/3") <= 3
    run = tmp_path / "runs" / "tiny" / "seed-0"
    for name in (
        "config.json",
        "environment.json",
        "metrics.csv",
        "steps.csv",
        "evaluations.jsonl",
        "events.jsonl",
        "model.npz",
        "model.json",
        "best_model.npz",
        "summary.json",
        "checkpoints/last.json",
        "checkpoints/best.json",
    ):
        assert (run / name).is_file(), name
    metrics = rows(run / "metrics.csv")
    assert [(r["epoch"], r["split"]) for r in metrics[:2]] == [("0", "val"), ("0", "test")]
    assert {(r["epoch"], r["split"]) for r in metrics} >= {
        (str(e), s) for e in (1, 2, 3) for s in ("train", "val", "test")
    }
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in metrics)
    assert len(rows(run / "steps.csv")) == 3 * 24  # 240 training samples / batch 10, 3 epochs
    env = json.loads((run / "environment.json").read_text())
    assert "numpy" in env["versions"] and env["machine"]["cpu_count"] >= 1
    records = [json.loads(x) for x in (run / "evaluations.jsonl").read_text().splitlines()]
    assert len(records) == 8 and len(records[-1]["latency"]["accuracy"]) == 101
    assert [s["name"] for s in records[-1]["sparsity"]] == ["input", "layer 1", "layer 2"]
    net = Network.load(run / "model")
    final = np.load(
        run / "checkpoints" / json.loads((run / "checkpoints/last.json").read_text())["arrays"]
    )
    assert np.array_equal(net.weights[1], final["w1"])
    summary = json.loads((run / "summary.json").read_text())
    test_final = [r for r in metrics if r["split"] == "test"][-1]
    assert summary["final"]["test"] == pytest.approx(float(test_final["accuracy"]))
    assert summary["best"]["split"] == "val"


def test_existing_run_refused_without_resume(tmp_path, capsys):
    cfg = tiny_config(tmp_path, epochs=1)
    out = tmp_path / "runs"
    assert train("--config", cfg, "--out", out) == 0
    metrics = out / "tiny" / "seed-0" / "metrics.csv"
    before = metrics.read_bytes()
    capsys.readouterr()
    assert train("--config", cfg, "--out", out) == 2
    assert "already holds a run: pass --resume" in capsys.readouterr().err
    assert metrics.read_bytes() == before
    assert train("--config", cfg, "--out", out, "--resume", "--epochs", 2) == 2
    assert "epochs differ" in capsys.readouterr().err.replace("training.", "")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["training"].update(epochs=0), "epochs"),
        (lambda d: d["network"]["layers"][-1].update(size=7), "classes"),
        (lambda d: d["training"].update(learning_rate=1), "unknown field"),
        (lambda d: d.update(run={"data": "all"}), "run.data"),
        (lambda d: d.update(run={"verify": "no"}), "run.verify"),
        (lambda d: d["training"].update(backend="tpu"), "training.backend"),
    ],
)
def test_bad_configuration_refused(tmp_path, capsys, edit, message):
    cfg = tiny_config(tmp_path)
    d = json.loads(cfg.read_text())
    edit(d)
    cfg.write_text(json.dumps(d))
    assert train("--config", cfg, "--out", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "refused" in err and message in err
    assert not (tmp_path / "runs").exists()


def test_not_json_refused(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert train("--config", bad, "--out", tmp_path / "runs") == 2
    assert "--config bad.json: not valid JSON" in capsys.readouterr().err


def test_missing_data_refused_with_how_to_get_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "cache"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train("mnist-multi", "--data-dir", empty, "--out", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and "--download" in err and "--data-dir" in err
    assert not (tmp_path / "runs").exists()


def test_net3_experiment_has_the_papers_settings():
    cfg = validate_run_config(experiment_config("mnist-net3"))
    layers = cfg["network"]["layers"]
    assert [(d.get("kind", "dense"), d.get("theta"), d.get("n_max")) for d in layers] == [
        ("conv", 0.04, 1), ("pool", None, None), ("conv", 0.8, 3), ("pool", None, None),
        ("dense", 0.6, 10), ("dense", 0.3, 30),
    ]  # fmt: skip
    assert [d.get("channels") for d in layers[::2]] == [15, 40, None]
    tr = cfg["training"]
    assert (tr["batch_size"], tr["y_true"], tr["y_false"], tr["t_max"]) == (20, 30, 3, 0.2)
    assert (tr["lr"], tr["lr_decay"], tr["lr_every"], tr["lr_floor"]) == (0.003, 0.5, 10, 1e-4)
    assert cfg["run"]["augment"] == "elastic" and cfg["run"]["data"] == "full"
    assert cfg["network"] == load_preset("mnist-net3").config["network"]


def net3_config(tmp_path, name="net3", **training) -> Path:
    """The mnist-net3 experiment on a few images of the embedded sample."""
    cfg = experiment_config("mnist-net3")
    cfg["run"] = {"data": "sample", "augment": "elastic"}
    cfg["training"].update(n_train=40, epochs=1, **training)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def test_net3_trains_on_a_few_augmented_batches(tmp_path, capsys):
    assert train("--config", net3_config(tmp_path), "--out", tmp_path / "runs") == 0
    run = tmp_path / "runs" / "net3" / "seed-0"
    saved = json.loads((run / "config.json").read_text())
    assert saved["run"]["augment"] == "elastic"
    assert len(rows(run / "steps.csv")) == 2  # 40 images in batches of 20
    net = Network.load(run / "model")
    assert [type(x).__name__ for x in net.layers] == [
        "Conv2D", "Pool2D", "Conv2D", "Pool2D", "Dense", "Dense"
    ]  # fmt: skip


def test_elastic_batches_depend_on_seed_epoch_and_image_only():
    images, _ = load_sample("mnist", split="train")
    a = elastic_batch(images, [3, 7, 9], seed=0, epoch=2, t_enc=0.1, dtype="float32")
    b = elastic_batch(images, [9, 3], seed=0, epoch=2, t_enc=0.1, dtype="float32")
    np.testing.assert_array_equal(a.times[2], b.times[0])  # image 9, whatever its batch
    c = elastic_batch(images, [9], seed=0, epoch=3, t_enc=0.1, dtype="float32")
    plain = encode_ttfs(images[[9]], 0.1, dtype="float32")
    assert not np.array_equal(a.times[2], c.times[0])  # a new distortion each epoch
    assert not np.array_equal(c.times, plain.times)
    assert a.times.shape == (3, 784, 1)


def tiny_conv_config(tmp_path, name="conv", **training) -> Path:
    """A small conv net (c4k5-p2-10) on the embedded sample with elastic augmentation."""
    net = NetworkSpec(
        layers=[
            LayerSpec(kind="conv", channels=4, kernel_size=5, theta=0.1, n_max=2),
            LayerSpec(kind="pool", pool_size=2),
            LayerSpec(size=10, tau_s=0.13, theta=0.5, n_max=10),
        ]
    )
    tr = TrainingConfig(
        task="mnist", t_max=0.2, y_true=8, y_false=2, optimizer="adam", lr=0.003,
        batch_size=10, epochs=6, n_train=200, val_fraction=0.2, seed=0, dtype="float32",
    )  # fmt: skip
    tr.param.update(**training)
    cfg = {**run_config(net, tr), "run": {"data": "sample", "augment": "elastic"}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


def test_seeds_give_one_folder_each(tmp_path):
    assert train("convergence-single", "--epochs", 3, "--seeds", 1, 2, "--out", tmp_path) == 0
    for seed in (1, 2):
        cfg = json.loads(
            (tmp_path / "convergence-single" / f"seed-{seed}" / "config.json").read_text()
        )
        assert cfg["training"]["seed"] == seed and cfg["training"]["epochs"] == 3


def _cli(*args):
    code = "import sys; from batscope.app.cli import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, "train", *map(str, args)]


@pytest.mark.parametrize("kind", ["dense", "conv, augmented"])
def test_resume_after_kill_9_equals_an_uninterrupted_run(tmp_path, kind):
    if kind == "dense":
        cfg, name = tiny_config(tmp_path, epochs=10, n_train=1000), "tiny"
    else:
        cfg, name = tiny_conv_config(tmp_path), "conv"
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    assert (
        subprocess.run(_cli("--config", cfg, "--out", whole), capture_output=True).returncode == 0
    )
    proc = subprocess.Popen(_cli("--config", cfg, "--out", cut), stderr=subprocess.PIPE)
    last = cut / name / "seed-0" / "checkpoints" / "last.json"
    deadline = time.monotonic() + 120
    while not last.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.3)  # somewhere in the middle of a later epoch
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / name / "seed-0" / "model.npz").exists()
    r = subprocess.run(
        _cli("--config", cfg, "--out", cut, "--resume"), capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr
    a, b = whole / name / "seed-0", cut / name / "seed-0"
    with np.load(a / "model.npz") as za, np.load(b / "model.npz") as zb:
        assert sorted(za.files) == sorted(zb.files)
        for k in za.files:
            assert np.array_equal(za[k], zb[k]), k  # bit for bit
    for name in ("metrics.csv", "evaluations.jsonl", "events.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    steps_a, steps_b = rows(a / "steps.csv"), rows(b / "steps.csv")
    assert [(s["step"], s["loss"]) for s in steps_a] == [(s["step"], s["loss"]) for s in steps_b]


def test_silent_outputs_alert_and_exit_status(tmp_path, capsys):
    cfg = tiny_config(tmp_path, out_theta=50.0, epochs=2)
    assert train("--config", cfg, "--out", tmp_path / "runs") == 3
    err = capsys.readouterr().err
    assert "ALERT" in err and "never fire" in err and "--remedy" in err
    run = tmp_path / "runs" / "tiny" / "seed-0"
    kinds = {json.loads(x)["kind"] for x in (run / "events.jsonl").read_text().splitlines()}
    assert {"collapse", "silent-outputs", "collapse-steps"} <= kinds
    last = rows(run / "metrics.csv")[-1]
    assert last["silent_outputs"] == ";".join(map(str, range(10)))
    assert float(last["silent_sample_fraction"]) == 1.0


def test_revive_silent_brings_outputs_back(tmp_path, capsys):
    cfg = tiny_config(tmp_path, out_theta=50.0, epochs=1)
    assert train("--config", cfg, "--out", tmp_path / "runs", "--remedy", "revive-silent") in (0, 3)
    capsys.readouterr()
    run = tmp_path / "runs" / "tiny" / "seed-0"
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "revive-silent" and "beyond the paper" in e["message"] for e in events)
    val = [r for r in rows(run / "metrics.csv") if r["split"] == "val"]
    assert val[0]["silent_outputs"] == ";".join(map(str, range(10)))  # before the remedy
    assert len(val[-1]["silent_outputs"].split(";")) < 10
    assert json.loads((run / "config.json").read_text())["run"]["remedies"] == ["revive-silent"]


def test_rollback_returns_to_the_best_checkpoint_with_a_lower_rate(tmp_path):
    d = json.loads(tiny_config(tmp_path, epochs=3).read_text())
    d["run"] = {"remedies": ["rollback"]}
    lines = []
    session = RunSession(validate_run_config(d), tmp_path / "run", say=lines.append)
    trainer = session.prepare(resume=False)
    step = trainer.step

    def sabotaged_step():  # silence every output once, at the start of epoch 2
        if trainer.epoch == 1 and trainer.batch == 0:
            w = [to_numpy(x).copy() for x in trainer.network.weights]
            w[-1][:] = -5.0
            trainer.network.weights = w
        return step()

    trainer.step = sabotaged_step
    session.run(trainer)
    events = [json.loads(x) for x in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    kinds = [(e["epoch"], e["kind"]) for e in events]
    assert (2, "collapse") in kinds and (2, "rollback") in kinds
    assert any("COLLAPSE at epoch 2" in line for line in lines)
    _, best = read_checkpoint(tmp_path / "run" / "checkpoints", "best")
    assert best["epoch"] == 1
    _, last = read_checkpoint(tmp_path / "run" / "checkpoints", "last")
    assert last["lr_scale"] == 0.5
    lrs = {int(r["epoch"]): float(r["lr"]) for r in rows(tmp_path / "run" / "steps.csv")}
    assert lrs[1] == 0.003 and lrs[2] == 0.0015  # epoch index of the batch: 0-based
    val = [r for r in rows(tmp_path / "run" / "metrics.csv") if r["split"] == "val"]
    assert float(val[2]["silent_sample_fraction"]) == 1.0  # collapsed after epoch 2
    assert float(val[3]["silent_sample_fraction"]) < 1.0  # back from the best checkpoint


def test_resume_refuses_a_corrupt_checkpoint(tmp_path, capsys):
    cfg = tiny_config(tmp_path, epochs=1)
    out = tmp_path / "runs"
    assert train("--config", cfg, "--out", out) == 0
    last = out / "tiny" / "seed-0" / "checkpoints" / "last.json"
    last.write_text('{"format": "batscope-checkpoint", "version": 1, "arrays": "../x.npz"}')
    capsys.readouterr()
    assert train("--config", cfg, "--out", out, "--resume") == 2
    assert "its arrays must lie beside it" in capsys.readouterr().err
    last.write_text("not json")
    assert train("--config", cfg, "--out", out, "--resume") == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_val_sets_the_held_out_images_and_is_refused_where_it_means_nothing(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers())
    for argv, n_val in ((["--val", "0"], 0), ([], 5000)):
        args = parser.parse_args(["train", "mnist-multi", *argv, "--out", str(tmp_path)])
        assert run_configs(args)[0][1]["run"]["n_val"] == n_val
    for name in ("convergence-multi", "yin-yang-single"):
        assert train(name, "--val", 10, "--out", tmp_path) == 2
        assert "--val holds out images of a full image dataset" in capsys.readouterr().err
        assert not (tmp_path / name).exists()


def test_the_module_entry_trains_without_panel_or_bokeh(tmp_path):
    """``python -m batscope.training.cli train`` (the GPU check's entry on a machine without the
    app's packages): same run folder and summary as ``batscope train``, Panel never imported."""
    config = tiny_config(tmp_path, epochs=1, n_train=60)
    probe = (
        "import runpy, sys; sys.argv = ['cli', *sys.argv[1:]]\n"
        "try:\n"
        "    runpy.run_module('batscope.training.cli', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('LOADED', sorted(m for m in ('panel', 'bokeh') if m in sys.modules))\n"
        "sys.exit(code)\n"
    )
    out = tmp_path / "runs"
    res = subprocess.run(
        [sys.executable, "-c", probe, "train", "--config", str(config), "--out", str(out)],
        capture_output=True, text=True, timeout=240, env={**os.environ, "TQDM_DISABLE": "1"},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert "LOADED []" in res.stdout
    summary = json.loads(res.stdout.splitlines()[0])
    assert summary["epochs"] == 1
    assert {r["epoch"] for r in rows(out / "tiny" / "seed-0" / "metrics.csv")} == {"0", "1"}
