"""SHD loader (datasets/shd.py) on small HDF5 files written here in the official layout."""

import gzip
import sys
import warnings

import h5py
import numpy as np
import pytest
from batscope import datasets
from batscope.datasets.shd import DroppedSpikesWarning, load_shd
from batscope.datasets.verify import UnverifiedDataWarning, UnverifiedFileError

# three samples: (times [s], units, label); channel 699 fires three times in sample 0
SAMPLES = [
    (np.array([0.01, 0.02, 0.02, 0.5, 0.7], np.float32), np.array([3, 699, 3, 699, 699]), 4),
    (np.array([0.0, 0.123456], np.float32), np.array([0, 10]), 19),
    (np.zeros(0, np.float32), np.zeros(0, int), 0),
]


def write_shd(path, samples=SAMPLES, times_dtype=np.float32, units_dtype=np.uint16, drop=()):
    with h5py.File(path, "w") as f:
        if "times" not in drop:
            t = f.create_dataset("spikes/times", (len(samples),), h5py.vlen_dtype(times_dtype))
            for i, (times, _, _) in enumerate(samples):
                t[i] = np.asarray(times, times_dtype)
        if "units" not in drop:
            u = f.create_dataset("spikes/units", (len(samples),), h5py.vlen_dtype(units_dtype))
            for i, (_, units, _) in enumerate(samples):
                u[i] = np.asarray(units, units_dtype)
        if "labels" not in drop:
            f.create_dataset("labels", data=np.array([s[2] for s in samples], np.uint8))
        f.create_dataset("extra/speaker", data=np.arange(len(samples)))  # ignored
    return path


def _load(data_dir, split="train", **kw):
    with pytest.warns(UnverifiedDataWarning, match="WITHOUT checksum verification"):
        return datasets.load("shd", split, data_dir=data_dir, verify=False, **kw)


def test_loads_exact_times_into_spike_trains(tmp_path):
    write_shd(tmp_path / "shd_train.h5")
    trains, labels = _load(tmp_path)
    assert labels.tolist() == [4, 19, 0] and labels.dtype == np.int64
    assert trains.times.shape == (3, 700, 3)  # K: channel 699 of sample 0 fires 3 times
    assert trains.counts[0, 3] == 2 and trains.counts[0, 699] == 3 and trains.counts[2].sum() == 0
    np.testing.assert_array_equal(trains.times[0, 699], np.float32([0.02, 0.5, 0.7]))
    assert trains.times[1, 10, 0] == np.float64(np.float32(0.123456))  # exact, not rounded
    assert trains.n_spikes == 7


def test_gzipped_file_in_a_shd_subfolder(tmp_path):
    raw = write_shd(tmp_path / "raw.h5").read_bytes()
    (tmp_path / "shd").mkdir()
    (tmp_path / "shd" / "shd_test.h5.gz").write_bytes(gzip.compress(raw))
    trains, labels = _load(tmp_path, "test")
    assert labels.tolist() == [4, 19, 0] and trains.n_spikes == 7


def test_unverified_files_need_verify_false(tmp_path):
    write_shd(tmp_path / "shd_train.h5")
    with pytest.raises(UnverifiedFileError, match=r"(?s)pins no checksum for SHD.*verify=False"):
        datasets.load("shd", "train", data_dir=tmp_path)


def test_missing_files_name_the_official_page(tmp_path, monkeypatch):
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "cache"))
    with pytest.raises(
        FileNotFoundError, match=r"(?s)shd_test.h5.*does not download SHD.*zenkelab"
    ):
        datasets.load("shd", "test", data_dir=tmp_path, verify=False)
    with pytest.raises(ValueError, match="shd split must be one of"):
        datasets.load("shd", "val", data_dir=tmp_path, verify=False)


def test_max_spikes_keeps_the_first_spikes_and_counts_the_dropped(tmp_path):
    write_shd(tmp_path / "shd_train.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDataWarning)
        with pytest.warns(DroppedSpikesWarning, match=r"dropped 1 of 7 spikes .* in 1 \(sample"):
            trains, _ = load_shd("train", data_dir=tmp_path, verify=False, max_spikes=2)
    assert trains.times.shape == (3, 700, 2)
    np.testing.assert_array_equal(trains.times[0, 699], np.float32([0.02, 0.5]))
    with pytest.raises(ValueError, match="max_spikes must be >= 1"):
        load_shd("train", data_dir=tmp_path, verify=False, max_spikes=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"drop": ("units",)}, "missing dataset /spikes/units"),
        ({"drop": ("labels",)}, "missing dataset /labels"),
        ({"times_dtype": np.int32}, "/spikes/times must hold floating-point times"),
        ({"units_dtype": np.float32}, "/spikes/units must hold integer channel numbers"),
        ({"samples": [(np.float32([0.1, -0.2]), [1, 2], 0)]}, "sample 0 has negative"),
        ({"samples": [(np.float32([0.1, np.nan]), [1, 2], 0)]}, "sample 0 has negative or non-f"),
        ({"samples": SAMPLES[:1] + [(np.float32([0.1]), [700], 0)]}, r"sample 1 has units out"),
        ({"samples": [(np.float32([0.1]), [1], 20)]}, r"labels outside 0..19"),
        ({"samples": [(np.float32([0.1, 0.2]), [1], 0)]}, "sample 0 has 2 times but 1 units"),
    ],
)
def test_bad_files_are_refused(tmp_path, kwargs, message):
    write_shd(tmp_path / "shd_train.h5", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDataWarning)
        with pytest.raises(ValueError, match=message):
            load_shd("train", data_dir=tmp_path, verify=False)


def test_not_hdf5_and_corrupt_gzip_are_refused(tmp_path):
    (tmp_path / "shd_train.h5").write_bytes(b"not an hdf5 file at all")
    (tmp_path / "shd_test.h5.gz").write_bytes(gzip.compress(np.arange(5000).tobytes())[:200])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDataWarning)
        with pytest.raises(ValueError, match="not an HDF5 file"):
            load_shd("train", data_dir=tmp_path, verify=False)
        with pytest.raises(ValueError, match="corrupt or truncated gzip"):
            load_shd("test", data_dir=tmp_path, verify=False)


def test_missing_h5py_gives_install_hint(tmp_path, monkeypatch):
    write_shd(tmp_path / "shd_train.h5")
    monkeypatch.setitem(sys.modules, "h5py", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDataWarning)
        with pytest.raises(ImportError, match=r"pip install 'batscope\[shd\]'"):
            load_shd("train", data_dir=tmp_path, verify=False)


def test_wrong_structure_and_lengths_are_refused(tmp_path):
    with h5py.File(tmp_path / "shd_train.h5", "w") as f:
        f.create_dataset("spikes", data=np.zeros(3))  # a dataset where the group should be
        f.create_dataset("labels", data=np.zeros(3, np.uint8))
    write_shd(tmp_path / "shd_test.h5")
    with h5py.File(tmp_path / "shd_test.h5", "a") as f:
        del f["labels"]
        f.create_dataset("labels", data=np.zeros(2, np.uint8))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDataWarning)
        with pytest.raises(ValueError, match="missing dataset /spikes/times"):
            load_shd("train", data_dir=tmp_path, verify=False)
        with pytest.raises(ValueError, match="2 labels but 3 /spikes/times"):
            load_shd("test", data_dir=tmp_path, verify=False)
