"""The embedded sample: shapes, class balance, manifest hashes, no pickle, reproducible build."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from batscope import datasets
from batscope.datasets.sample import SAMPLE_DIR, load_sample, sample_manifest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("split,n", [("train", 2000), ("test", 1000)])
def test_shapes_and_balance(name, split, n):
    x, y = load_sample(name, split)
    assert x.shape == (n, 28, 28) and x.dtype == np.uint8
    assert y.shape == (n,) and y.dtype == np.int64
    assert np.bincount(y, minlength=10).tolist() == [n // 10] * 10
    assert x.max() == 255 and x.min() == 0


def test_manifest_hashes_and_size():
    m = sample_manifest()
    total = 0
    for fname, entry in m["files"].items():
        data = (SAMPLE_DIR / fname).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        with np.load(SAMPLE_DIR / fname, allow_pickle=False) as z:
            assert hashlib.sha256(z["images"].tobytes()).hexdigest() == entry["images_sha256"]
            assert z["labels"].dtype == np.uint8
    assert total < 5_000_000
    assert "seed" in m
    assert "unofficial" in m["datasets"]["fashion-mnist"]["note"].lower()


def test_public_entry_point():
    x, y = datasets.load_sample("mnist", split="test")
    assert x.shape == (1000, 28, 28)
    with pytest.raises(ValueError):
        datasets.load_sample("emnist")


def test_sample_rows_come_from_source():
    mnist = SHARED / "datasets" / "mnist"
    if not mnist.is_dir():
        pytest.skip(f"{mnist} is not present")
    from batscope.datasets.idx import read_idx

    src = read_idx(mnist / "t10k-images-idx3-ubyte.gz")
    with np.load(SAMPLE_DIR / "mnist_test.npz", allow_pickle=False) as z:
        idx = z["source_index"]
        np.testing.assert_array_equal(src[idx], z["images"])


def test_build_is_reproducible(tmp_path):
    shared = SHARED / "datasets"
    if not (shared / "mnist").is_dir() or not (shared / "fashion-mnist-unofficial-split").is_dir():
        pytest.skip(f"{shared} is not present")
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "build_sample.py"
    spec = importlib.util.spec_from_file_location("build_sample", script)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = mod.build(shared, tmp_path)
    for fname, entry in m["files"].items():
        assert entry["sha256"] == sample_manifest()["files"][fname]["sha256"], fname
