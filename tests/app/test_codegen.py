"""Show-the-code: the generated script runs on its own and trains like the app's Trainer."""

import ast
import re
import subprocess
import sys

import pytest
from batscope.training.codegen import render_script
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig, run_config
from batscope.training.trainer import Trainer


def toy_config(**training):
    """Convergence task, 4 → 2 multi-spike, W ~ N(1.0, 0.6²): learns 50 % → 100 % in 50 epochs."""
    spec = NetworkSpec(
        layers=[
            LayerSpec(
                size=2, tau_s=1.0, theta=1.0, n_max=10, init="normal", init_mean=1.0, init_std=0.6
            )
        ]
    )
    return run_config(spec, TrainingConfig(task="convergence", epochs=50, **training))


def run(script: str, tmp_path) -> str:
    path = tmp_path / "train_batscope.py"
    path.write_text(script)
    res = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_generated_script_trains_a_toy_config(tmp_path):
    config = toy_config()
    out = run(render_script(config), tmp_path)
    accs = [float(a) for a in re.findall(r"train accuracy (\d\.\d+)", out)]
    assert len(accs) == 50
    assert accs[0] == 0.5 and max(accs) == 1.0  # it trains
    final = float(re.search(r"test accuracy: (\d\.\d+)", out).group(1))
    trainer = Trainer(config)  # the app's own loop gives the same result
    while not trainer.finished:
        trainer.step()
    assert final == pytest.approx(trainer.evaluate("train").row.accuracy)


@pytest.mark.slow  # a fresh interpreter compiles the Numba kernels (~30 s with a cold cache)
def test_image_task_script_with_adam_and_ttfs(tmp_path):
    spec = NetworkSpec(
        layers=[
            LayerSpec(size=20, tau_s=0.13, theta=0.7, n_max=1, init_low=0.0, init_high=1.0),
            LayerSpec(size=10, tau_s=0.13, theta=2.0, n_max=1, init_low=0.0, init_high=1.0),
        ]
    )
    training = TrainingConfig(
        task="mnist",
        epochs=1,
        n_train=100,
        t_max=0.2,
        loss="ttfs_ce",
        tau_l=0.005,
        optimizer="adam",
        lr=0.003,
        batch_size=50,
        val_fraction=0.1,
        lr_decay=0.5,
        lr_every=10,
        lr_floor=1e-4,
    )
    script = render_script(run_config(spec, training))
    tree = ast.parse(script)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert {"Adam", "TTFSCrossEntropy", "Uniform"} <= imported and "SGD" not in imported
    assert 'load_sample("mnist", "train")' in script
    out = run(script, tmp_path)
    assert "val accuracy" in out and re.search(r"test accuracy: \d\.\d+", out)


def test_bad_configs_name_the_problem():
    with pytest.raises(TypeError):
        render_script("config")
    with pytest.raises(ValueError, match="network"):
        render_script({"training": {}})
    config = toy_config()
    config["training"]["loss"] = "hinge"
    with pytest.raises(ValueError, match="training.loss"):
        render_script(config)
    config = toy_config()
    del config["network"]["layers"][0]["theta"]
    with pytest.raises(ValueError, match=r"layers\[0\]\.theta"):
        render_script(config)
    config = toy_config()
    config["training"]["task"] = "imagenet"
    with pytest.raises(ValueError, match="imagenet"):
        render_script(config)


@pytest.mark.slow  # a fresh interpreter compiles the Numba kernels (~30 s with a cold cache)
def test_yinyang_script_trains_like_the_app(tmp_path):
    from batscope.app.presets import load_preset

    config = load_preset("yin-yang").config
    config["training"]["epochs"] = 1
    script = render_script(config)
    assert 'datasets.load("yin-yang", "val")' in script and "encode_yinyang" in script
    out = run(script, tmp_path)
    final = float(re.search(r"test accuracy: (\d\.\d+)", out).group(1))
    trainer = Trainer(config)
    while not trainer.finished:
        trainer.step()
    assert final == pytest.approx(trainer.evaluate("test").row.accuracy, abs=1e-3)


@pytest.mark.slow  # a fresh interpreter, as above
def test_shd_script_reads_the_files_unverified(tmp_path, monkeypatch, write_shd):
    from batscope.app.presets import load_preset

    config = load_preset("shd-multi").config
    config["network"]["layers"][0]["size"] = 8
    config["training"].update(epochs=1, n_train=16, batch_size=8)
    script = render_script(config)
    ast.parse(script)
    assert 'load_shd("train", verify=False' in script and "train_val_split(n, n_val, 0)" in script
    folder = tmp_path / "data" / "shd"
    folder.mkdir(parents=True)
    write_shd(folder / "shd_train.h5", 16, 0)
    write_shd(folder / "shd_test.h5", 8, 1)
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "data"))
    out = run(script, tmp_path)
    assert "val accuracy" in out and re.search(r"test accuracy: \d\.\d+", out)
