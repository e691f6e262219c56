"""SHD in the app: offered from the data folder's files with a clear message when they are missing;
the presets train on small files in the official layout and the input raster shows every spike of
a spoken digit (many spikes per channel)."""

from __future__ import annotations

import numpy as np
import pytest
from batscope.app.presets import load_preset
from batscope.datasets.verify import UnverifiedDataWarning
from batscope.engine.analysis import bin_raster
from batscope.training.controller import TrainingController
from batscope.training.eventdata import missing_data, shd_extent
from batscope.training.resources import training_estimate
from batscope.training.state import NetworkSpec, TrainingConfig, ViewConfig, apply_run_config
from batscope.training.trainer import Trainer

pytest.importorskip("h5py")


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def shd_data(tmp_path, monkeypatch, write_shd):
    """The data folder holding small SHD files (official layout) in its ``shd`` folder."""
    folder = tmp_path / "data" / "shd"
    folder.mkdir(parents=True)
    write_shd(folder / "shd_train.h5", 24, 0)
    write_shd(folder / "shd_test.h5", 12, 1)
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "data"))
    return folder


def _small(name: str, hidden: int = 16) -> dict:
    """An SHD preset's configuration with a smaller hidden layer and training set."""
    config = load_preset(name).config
    config["network"]["layers"][0]["size"] = hidden
    config["training"].update(n_train=20, batch_size=10, epochs=1)
    return config


def test_missing_files_are_named_and_refused_at_play(empty_data):
    assert missing_data("yin-yang") == ""
    message = missing_data("shd")
    assert "shd_train.h5" in message and str(empty_data / "shd") in message
    net, cfg = NetworkSpec(), TrainingConfig()
    apply_run_config(load_preset("shd-multi").config, net, cfg)
    ctrl = TrainingController(net, cfg, ViewConfig(), Trainer)
    ctrl.start = True
    assert ctrl.status == "idle" and ctrl.run is None
    assert "shd_train.h5" in ctrl.message and "batscope does not download SHD" in ctrl.message
    assert str(empty_data) not in ctrl.message  # the page names no path of the server's disk
    with pytest.raises(FileNotFoundError, match="shd_train.h5"):  # as the views expect
        Trainer(load_preset("shd-multi").config)


@pytest.mark.parametrize(("name", "hidden_s"), [("shd-multi", 30), ("shd-single", 1)])
def test_presets_are_700_n_20_and_train_on_the_files(shd_data, name, hidden_s):
    assert missing_data("shd") == ""
    layers = load_preset(name).config["network"]["layers"]
    assert [x["size"] for x in layers] == [128, 20] and layers[0]["n_max"] == hidden_s
    with pytest.warns(UnverifiedDataWarning):  # no checksum is pinned for SHD
        trainer = Trainer(_small(name))
    assert trainer.network.n_inputs == 700 and trainer.network.sizes[-1] == 20
    _, k = shd_extent("train")
    assert trainer.data.train.times.shape[1:] == (700, k) and k > 1  # many spikes a channel
    trainer.step()
    assert np.isfinite(trainer.history[-1].loss)


def test_memory_estimate_counts_the_files_samples_and_slots(shd_data):
    config = _small("shd-multi")
    n_train, k_train = shd_extent("train")
    n_test, k_test = shd_extent("test")
    data = training_estimate(config).parts["data"]
    slots = max(k_train, k_test)
    assert data == (n_train + 20 + n_test) * 700 * (slots * 4 + 4)  # float32 times, counts


def test_input_raster_shows_every_spike_of_a_spoken_digit(shd_data):
    pytest.importorskip("panel")
    from batscope.widgets.raster import RasterView

    with pytest.warns(UnverifiedDataWarning):
        trainer = Trainer(_small("shd-multi"))
    snap = trainer.snapshot(sample_index=3)
    inp = snap.activity[0]
    x, _ = trainer.display_set()
    np.testing.assert_array_equal(inp.counts, x.counts[3])
    assert inp.shape == (700,) and inp.counts.max() > 1
    view = RasterView(ViewConfig(layer=0, raster_mode="exact"))
    view.update([snap])
    n_spikes = int(inp.counts.sum())
    data = view.exact_source.data
    assert len(data["t"]) == n_spikes  # every spike, several per channel
    finite = np.sort(inp.times[np.isfinite(inp.times)])
    np.testing.assert_array_equal(np.sort(data["t"]), finite)  # at their exact times
    view.view_config.raster_mode = "binned"
    image = view.binned_source.data["image"][0]
    assert image.sum() == n_spikes  # binned: nothing lost either
    _, binned = bin_raster(inp.times, inp.counts, snap.t_max, image.shape[1])
    np.testing.assert_array_equal(image, binned)


def test_the_servers_data_folder_holds_them_too(tmp_path, monkeypatch, write_shd):
    from batscope.training.serversettings import DATA_DIR_ENV, data_dir, server_trainer

    folder = tmp_path / "served" / "shd"  # batscope serve --data-dir tmp_path/served
    folder.mkdir(parents=True)
    write_shd(folder / "shd_train.h5", 24, 0)
    write_shd(folder / "shd_test.h5", 12, 1)
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "served"))
    assert missing_data("shd") != "" and missing_data("shd", data_dir()) == ""
    config = _small("shd-multi")
    assert training_estimate(config).parts["data"] > 0  # counted from the server's files
    with pytest.warns(UnverifiedDataWarning):
        trainer = server_trainer(config)
    assert trainer.data.train.n_neurons == 700
