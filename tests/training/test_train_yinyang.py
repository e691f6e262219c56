"""``batscope train`` on the event datasets: Yin-Yang (generated) and SHD (small HDF5 files in the
official layout, written by the ``write_shd`` fixture; the real files are not needed)."""

import csv
import json

import pytest
from batscope.app.cli import main
from batscope.datasets.verify import UnverifiedDataWarning
from batscope.training.experiments import experiment_config
from batscope.training.runconfig import validate_run_config


def train(*args) -> int:
    return main(["train", *map(str, args)])


def test_yinyang_multi_writes_a_run_folder(tmp_path):
    out = tmp_path / "runs"
    assert train("yin-yang-multi", "--epochs", 1, "--out", out) == 0
    run = out / "yin-yang-multi" / "seed-0"
    with open(run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["epoch"], r["split"]) for r in rows} >= {("1", "train"), ("1", "val"), ("1", "test")}
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["task"] == "yin-yang"
    assert [x["size"] for x in config["network"]["layers"]] == [120, 3]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 1 and summary["best"]["split"] == "val"
    assert (run / "best_model.npz").is_file()


def test_yinyang_single_learns_well_above_chance(tmp_path, capsys):
    assert train("yin-yang-single", "--epochs", 3, "--out", tmp_path) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["best"]["accuracy"] > 0.5  # three balanced classes: chance is 1/3
    assert summary["best"]["test_accuracy"] > 0.5


def test_yinyang_output_size_is_checked_against_its_classes():
    config = experiment_config("yin-yang-single")
    config["network"]["layers"][-1]["size"] = 4
    with pytest.raises(ValueError, match="task 'yin-yang' has 3 classes"):
        validate_run_config(config)
    config["network"]["layers"][0]["tau_s"] = -1.0
    with pytest.raises(ValueError, match=r"network.layers\[0\].tau_s"):
        validate_run_config(config)


def test_shd_trains_one_epoch_on_a_synthetic_file(tmp_path, capsys, write_shd):
    write_shd(tmp_path / "shd_train.h5", 40, 0)
    write_shd(tmp_path / "shd_test.h5", 20, 1)
    out = tmp_path / "runs"
    args = ("shd", "--epochs", 1, "--data-dir", tmp_path, "--no-verify", "--out", out)
    with pytest.warns(UnverifiedDataWarning):
        assert train(*args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and set(summary["final"]) == {"val", "test"}
    config = json.loads((out / "shd" / "seed-0" / "config.json").read_text())
    assert config["run"]["verify"] is False
    assert [x["size"] for x in config["network"]["layers"]] == [128, 20]


def test_shd_without_files_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "cache"))
    out = tmp_path / "runs"
    assert train("shd", "--data-dir", tmp_path, "--no-verify", "--out", out) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "shd_train.h5" in err and "--data-dir FOLDER" in err
    assert not out.exists()


def test_shd_files_without_no_verify_are_refused(tmp_path, capsys, write_shd):
    write_shd(tmp_path / "shd_train.h5", 4, 0)
    write_shd(tmp_path / "shd_test.h5", 4, 1)
    assert train("shd", "--data-dir", tmp_path, "--out", tmp_path / "runs") == 2
    err = capsys.readouterr().err
    assert "pins no checksum" in err and "--no-verify" in err
    assert not (tmp_path / "runs").exists()
