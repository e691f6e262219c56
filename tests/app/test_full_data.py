"""The data choice (embedded sample / full dataset): schema, URL, CLI config, what the server
allows, the Training form's refusal and the memory estimate."""

from __future__ import annotations

import pytest
from batscope.app.cli import server_env
from batscope.app.urlstate import query_config
from batscope.datasets import files_present, get_spec
from batscope.training import serversettings
from batscope.training.limits import validate_config
from batscope.training.resources import training_estimate
from batscope.training.runconfig import validate_run_config
from batscope.training.state import NetworkSpec, TrainingConfig, apply_run_config, run_config


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No dataset file anywhere, no download, no data folder."""
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "cache"))
    for env in ("BATSCOPE_DATA_DIR", "BATSCOPE_ALLOW_DOWNLOAD", "BATSCOPE_RUNS_DIR"):
        monkeypatch.delenv(env, raising=False)
    return tmp_path


def _mnist_files(folder):
    """Empty files named as the official MNIST ones (only their presence is looked at)."""
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        for kind in ("images", "labels"):
            (folder / get_spec("mnist").file(split, kind).gz_name).write_bytes(b"")


def test_the_schema_bounds_the_choice():
    tr = TrainingConfig()
    assert tr.data == "sample"
    with pytest.raises(ValueError, match="data"):
        tr.data = "everything"
    assert tr.data == "sample"
    with pytest.raises(ValueError, match="training.data"):
        tr.set_from_dict({**tr.to_dict(), "data": "../../etc"})


def test_configs_write_data_only_when_full():
    net, tr = NetworkSpec(), TrainingConfig(task="mnist")
    assert "data" not in run_config(net, tr)["training"]  # a sample run's config is unchanged
    tr.data = "full"
    cfg = run_config(net, tr)
    assert cfg["training"]["data"] == "full"
    other = TrainingConfig(data="full")
    apply_run_config({**cfg, "training": {**cfg["training"], "data": "sample"}}, net, other)
    assert other.data == "sample"
    apply_run_config(validate_config(cfg), net, other)
    assert other.data == "full"


def test_the_url_reads_data_through_the_schema():
    net, tr = NetworkSpec(), TrainingConfig()
    assert query_config({"task": "mnist", "data": "full"}, net, tr)["training"]["data"] == "full"
    with pytest.raises(ValueError, match="data"):
        query_config({"data": "huge"}, net, tr)


def test_an_app_config_with_full_data_runs_full_from_the_cli():
    tr = TrainingConfig(task="mnist", data="full")
    net = NetworkSpec()
    net.set_from_dict({"layers": [{"size": 10}]})
    cfg = validate_run_config(run_config(net, tr))
    assert cfg["run"]["data"] == "full" and "data" not in cfg["training"]


def test_full_data_needs_its_files_or_a_download(nowhere, monkeypatch):
    why = serversettings.full_data_refusal("mnist")
    assert "not on this server" in why and "--allow-download" in why
    assert str(nowhere) not in why  # a participant learns no path of the server's disk
    assert not files_present("mnist")
    monkeypatch.setenv("BATSCOPE_ALLOW_DOWNLOAD", "1")
    assert serversettings.full_data_refusal("mnist") == ""
    monkeypatch.delenv("BATSCOPE_ALLOW_DOWNLOAD")
    _mnist_files(nowhere / "data" / "mnist")  # one folder per dataset in the server's folder
    monkeypatch.setenv("BATSCOPE_DATA_DIR", str(nowhere / "data"))
    assert files_present("mnist", nowhere / "data")
    assert serversettings.full_data_refusal("mnist") == ""
    assert serversettings.full_data_refusal("fashion-mnist") != ""


def test_the_form_offers_full_data_only_where_it_is(nowhere, monkeypatch):
    from batscope.app.factory import create_app

    app = create_app()
    tr, form = app.training, app.form
    tr.task = "mnist"
    assert form.inputs["data"].visible
    tr.data = "full"
    assert tr.data == "sample" and form.alert.visible
    assert "not on this server" in form.alert.object
    _mnist_files(nowhere / "cache" / "mnist")  # the files appear in the cache
    tr.data = "full"
    assert tr.data == "full"
    tr.task = "convergence"
    assert not form.inputs["data"].visible  # a toy task has no dataset to choose


def test_full_mnist_counts_against_the_memory_budget():
    net = NetworkSpec()
    net.set_from_dict({"layers": [{"size": 10}]})
    sample = training_estimate(run_config(net, TrainingConfig(task="mnist", n_train=60_000)))
    full = training_estimate(
        run_config(net, TrainingConfig(task="mnist", n_train=60_000, data="full"))
    )
    assert full.parts["images"] == 70_000 * (784 + 8) and sample.parts["images"] == 0
    # encoded (float64 times, int32 counts): the training set twice, then 1,000 test images;
    # the sample holds 2,000 training images, the full set 60,000
    assert sample.parts["data"] == (2 * 2_000 + 1_000) * 784 * (8 + 4)
    assert full.parts["data"] == (2 * 60_000 + 1_000) * 784 * (8 + 4)


def test_serve_passes_the_settings_to_the_server(tmp_path):
    env = server_env(tmp_path / "d", True, tmp_path / "r", base={})
    assert env == {
        "BATSCOPE_DATA_DIR": str((tmp_path / "d").resolve()),
        "BATSCOPE_RUNS_DIR": str((tmp_path / "r").resolve()),
        "BATSCOPE_ALLOW_DOWNLOAD": "1",
    }
    assert server_env(base={}) == {}  # nothing is allowed unless asked


def test_the_app_downloads_only_when_the_server_allows_it(nowhere, monkeypatch):
    from batscope.training import trainer

    calls = []

    def load(name, split, data_dir=None, download=True, **kw):
        calls.append((name, split, data_dir, download))
        raise FileNotFoundError(f"{name} {split} split not found")

    monkeypatch.setattr(trainer.datasets, "load", load)
    net = NetworkSpec()
    net.set_from_dict({"layers": [{"size": 10}]})
    config = run_config(net, TrainingConfig(task="mnist", data="full"))
    monkeypatch.setenv("BATSCOPE_DATA_DIR", str(nowhere / "data"))
    with pytest.raises(FileNotFoundError, match="not found"):
        serversettings.server_trainer(config)
    assert calls == [("mnist", "train", nowhere / "data", False)]
    monkeypatch.setenv("BATSCOPE_ALLOW_DOWNLOAD", "1")
    with pytest.raises(FileNotFoundError):
        serversettings.server_trainer(config)
    assert calls[-1] == ("mnist", "train", nowhere / "data", True)
