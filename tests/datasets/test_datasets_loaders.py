"""load(): real MNIST files, synthetic IDX folders (raw/.gz/archive), verification, errors."""

import gzip
import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
from _synth_datasets import archive_spec, arrays, make_spec, write_archive, write_files
from batscope import datasets
from batscope.datasets import registry
from batscope.datasets.verify import ChecksumError, UnverifiedDataWarning, UnverifiedFileError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
MNIST_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BATSCOPE_DATA", str(cache))
    return cache


def register(monkeypatch, spec):
    monkeypatch.setitem(registry.DATASETS, spec.name, spec)
    return spec


def shared(sub):
    p = SHARED / sub
    if not p.is_dir():
        pytest.skip(f"{p} is not present (the shared datasets folder beside the checkout)")
    return p


def test_real_mnist_verifies_and_loads():
    folder = shared("mnist")
    x, y = datasets.load("mnist", split="train", data_dir=folder, download=False)
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8
    assert y.dtype == np.int64 and np.bincount(y).tolist() == MNIST_COUNTS
    xt, yt = datasets.load("mnist", split="test", data_dir=folder, download=False)
    assert xt.shape == (10000, 28, 28) and yt.shape == (10000,)


def test_real_mnist_decompressed_copy_verifies(tmp_path):
    folder = shared("mnist")
    raw = tmp_path / "raw"
    raw.mkdir()
    for f in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / f).write_bytes(gzip.decompress((folder / f"{f}.gz").read_bytes()))
    x, y = datasets.load("mnist", split="test", data_dir=raw, download=False)
    assert x.shape == (10000, 28, 28)
    # a single changed byte in the content is refused
    p = raw / "t10k-labels-idx1-ubyte"
    b = bytearray(p.read_bytes())
    b[-1] = (b[-1] + 1) % 10
    p.write_bytes(bytes(b))
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        datasets.load("mnist", split="test", data_dir=raw, download=False)


def test_unofficial_fashion_copy_is_refused_by_default():
    folder = shared("fashion-mnist-unofficial-split")
    with pytest.raises(UnverifiedFileError, match="verify=False"):
        datasets.load("fashion-mnist", split="test", data_dir=folder, download=False)
    with pytest.warns(UnverifiedDataWarning):
        x, y = datasets.load(
            "fashion-mnist", split="test", data_dir=folder, download=False, verify=False
        )
    assert x.shape == (10000, 28, 28) and y.max() == 9


@pytest.mark.parametrize("compress", [True, False])
def test_synthetic_raw_and_gz(monkeypatch, tmp_path, compress):
    spec = register(monkeypatch, make_spec())
    write_files(spec, tmp_path / "d", compress=compress)
    x, y = datasets.load("synth", "train", data_dir=tmp_path / "d", download=False)
    imgs, labs = arrays("train")
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, labs.astype(np.int64))


def test_subfolder_and_dotted_names(monkeypatch, tmp_path):
    spec = register(monkeypatch, make_spec())
    paths = write_files(spec, tmp_path / "d" / "synth", compress=False)
    for p in paths.values():
        p.rename(p.with_name(p.name.replace("-idx", ".idx")))
    x, _ = datasets.load("synth", "test", data_dir=tmp_path / "d", download=False)
    assert x.shape == (6, 4, 5)


def test_cache_folder_is_used(monkeypatch, isolated_cache):
    spec = register(monkeypatch, make_spec())
    write_files(spec, isolated_cache / "synth")
    x, _ = datasets.load("synth", "train", download=False)
    assert x.shape == (12, 4, 5)


def test_checksum_mismatch_refused(monkeypatch, tmp_path):
    spec = register(monkeypatch, make_spec())
    paths = write_files(spec, tmp_path / "d", compress=False)
    p = paths[("train", "images")]
    b = bytearray(p.read_bytes())
    b[100] ^= 0xFF
    p.write_bytes(bytes(b))
    with pytest.raises(ChecksumError, match="train-images"):
        datasets.load("synth", "train", data_dir=tmp_path / "d", download=False)


def test_truncated_file_errors(monkeypatch, tmp_path):
    spec = register(monkeypatch, make_spec())
    paths = write_files(spec, tmp_path / "d", compress=True)
    p = paths[("train", "images")]
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        datasets.load("synth", "train", data_dir=tmp_path / "d", download=False)
    # even with verification off, a truncated IDX payload is a clear ValueError
    paths = write_files(spec, tmp_path / "e", compress=False)
    p = paths[("train", "images")]
    p.write_bytes(p.read_bytes()[:-3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnverifiedDataWarning)
        with pytest.raises(ValueError, match="truncated"):
            datasets.load("synth", "train", data_dir=tmp_path / "e", download=False, verify=False)


def test_gz_digest_alternative(monkeypatch, tmp_path):
    spec = register(monkeypatch, make_spec(content_hash=False, gz_md5=True, level=9))
    write_files(spec, tmp_path / "ok", level=9)
    x, _ = datasets.load("synth", "train", data_dir=tmp_path / "ok", download=False)
    assert x.shape == (12, 4, 5)
    # re-compressed differently: bytes differ and nothing pins the content -> refused
    write_files(spec, tmp_path / "re", level=1)
    with pytest.raises(UnverifiedFileError):
        datasets.load("synth", "train", data_dir=tmp_path / "re", download=False)
    with pytest.warns(UnverifiedDataWarning):
        datasets.load("synth", "train", data_dir=tmp_path / "re", download=False, verify=False)


def test_missing_offline_names_files_and_folder(monkeypatch, tmp_path, isolated_cache):
    register(monkeypatch, make_spec())
    with pytest.raises(FileNotFoundError) as e:
        datasets.load("synth", "test", data_dir=tmp_path / "empty", download=False)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and "t10k-labels-idx1-ubyte.gz" in msg
    assert str(isolated_cache / "synth") in msg and str(tmp_path / "empty") in msg


def test_archive_transpose_and_label_offset(monkeypatch, tmp_path):
    base = make_spec("arch", archive=archive_spec("0" * 32), transpose=True, label_offset=1)
    md5 = hashlib.md5(write_archive(base, tmp_path / "d" / "gzip.zip")).hexdigest()
    spec = register(
        monkeypatch,
        make_spec(
            "arch", archive=archive_spec(md5), transpose=True, label_offset=1, content_hash=False
        ),
    )
    x, y = datasets.load("arch", "train", data_dir=tmp_path / "d", download=False)
    imgs, labs = arrays("train", offset=1)
    np.testing.assert_array_equal(x, imgs.transpose(0, 2, 1))
    np.testing.assert_array_equal(y, labs.astype(np.int64) - 1)
    assert y.min() == 0
    # an archive that does not match its pinned MD5 vouches for nothing
    bad = register(
        monkeypatch,
        make_spec(
            "arch",
            archive=archive_spec("f" * 32),
            transpose=True,
            label_offset=1,
            content_hash=False,
        ),
    )
    assert bad.archive.md5 == "f" * 32
    with pytest.raises(ValueError, match="checksum|verify"):
        datasets.load("arch", "train", data_dir=tmp_path / "d", download=False)
    # extracted members (gzip/ subfolder) are found too, verified by content hash
    spec = register(monkeypatch, make_spec("arch", transpose=True, label_offset=1))
    write_files(spec, tmp_path / "x" / "gzip")
    x2, _ = datasets.load("arch", "test", data_dir=tmp_path / "x", download=False)
    assert x2.shape == (6, 5, 4)


def test_registry_names_and_errors():
    assert set(datasets.list_datasets()) >= {
        "mnist",
        "fashion-mnist",
        "emnist-balanced",
        "emnist-letters",
        "emnist-digits",
    }
    assert registry.get_spec("emnist").name == "emnist-balanced"
    assert registry.get_spec("EMNIST_Balanced").name == "emnist-balanced"
    with pytest.raises(ValueError, match="unknown dataset"):
        datasets.load("cifar10")
    with pytest.raises(ValueError, match="split"):
        datasets.load("mnist", split="val", download=False)
    for spec in registry.DATASETS.values():
        assert all(fs.has_hash for fs in spec.files.values()), spec.name
        assert all(u.startswith("http") for u in spec.mirrors)
    assert registry.get_spec("emnist-balanced").counts["test"] == 18800


def test_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path / "x"))
    assert datasets.cache_dir() == tmp_path / "x"
    monkeypatch.delenv("BATSCOPE_DATA")
    assert datasets.cache_dir() == Path.home() / ".cache" / "batscope"


def test_cli_check_and_list(capsys):
    from batscope.datasets.__main__ import main

    assert main(["list"]) == 0
    assert "emnist-balanced" in capsys.readouterr().out
    folder = shared("mnist")
    assert main(["check", "mnist", "--data-dir", str(folder)]) == 0
    assert "mnist test: 10000 images" in capsys.readouterr().out
    assert main(["check", "emnist"]) == 1
    assert "gzip.zip" in capsys.readouterr().err
