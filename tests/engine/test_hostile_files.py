"""Hostile model files: every size is checked before anything is allocated or decompressed.

Before these checks a 497-byte config with one layer of n = 100 000 allocated 1.2 GB (the network
was built before the weights were checked), a 1 MB ``.npz`` holding 1 GB of zeros was inflated
before its shape was checked, and a deeply nested config raised RecursionError.
"""

import json
import tracemalloc
import zipfile

import numpy as np
import pytest
from batscope.engine import Dense, Network
from batscope.engine.io import MAX_CONFIG_BYTES, parse_json

FLAT = 8 * 2**20  # bytes: "memory stays flat" (the files themselves are about 1 MB)


def _net(seed=0):
    return Network(4, [Dense(5, 0.1, 0.1), Dense(3, 0.1, 1.0)], seed=seed)


def _peak(fn):
    """``(exception raised by fn, traced peak bytes while it ran)``."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            fn()
        return info.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _write_npy_member(z, name, shape, data_bytes, chunk=2**20):
    """A ``.npy`` member whose header declares ``shape`` (float64), followed by zeros."""
    with z.open(name, "w", force_zip64=True) as f:
        header = {"descr": "<f8", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        zeros = bytes(chunk)
        for _ in range(data_bytes // chunk):
            f.write(zeros)
        f.write(bytes(data_bytes % chunk))


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """``bomb.npz``: about 1 MB on disk, 1 GiB of float64 zeros once inflated; and
    ``bomb.json``, a config whose single layer matches its shape."""
    folder = tmp_path_factory.mktemp("bomb")
    shape = (131072, 1024)  # 2**30 bytes of float64
    with zipfile.ZipFile(folder / "bomb.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        _write_npy_member(z, "w0.npy", shape, 2**30)
    config = _net().config() | {"n_inputs": 1024, "layers": [Dense(131072, 0.1, 0.1).to_dict()]}
    (folder / "bomb.json").write_text(json.dumps(config))
    assert (folder / "bomb.npz").stat().st_size < 2 * 2**20
    return folder / "bomb"


def test_a_small_npz_that_inflates_to_a_gigabyte_is_refused_from_its_headers(bomb):
    target = Network(4, [Dense(5, 0.1, 0.1)])
    before = [w.copy() for w in target.weights]
    exc, peak = _peak(lambda: target.load_weights(bomb))
    assert "w0 has shape (131072, 1024), the network expects (5, 4)" in str(exc)
    assert peak < FLAT, peak
    for a, b in zip(target.weights, before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_consistent_bomb_is_refused_by_the_callers_limits_before_building(bomb):
    exc, peak = _peak(lambda: Network.load(bomb, max_bytes=64 * 2**20))
    assert "more than max_bytes=67108864" in str(exc) and peak < FLAT, peak
    exc, peak = _peak(lambda: Network.load(bomb, max_weights=10**6))
    assert "134217728 weights, more than max_weights=1000000" in str(exc) and peak < FLAT


def test_a_tiny_config_asking_for_a_huge_layer_is_refused_before_building(tmp_path):
    Network(4, [Dense(5, 0.1, 0.1)]).save(tmp_path / "m")  # a genuine small weight file
    config = _net().config() | {"n_inputs": 784, "layers": [Dense(100_000, 0.1, 0.1).to_dict()]}
    text = json.dumps(config)
    assert len(text) < 500  # the 497-byte file
    (tmp_path / "m.json").write_text(text)
    exc, peak = _peak(lambda: Network.load(tmp_path / "m"))
    assert "w0 has shape (5, 4), the network expects (100000, 784)" in str(exc)
    assert peak < FLAT, peak
    exc, peak = _peak(lambda: Network.load(tmp_path / "m", max_weights=10**6))
    assert "78400000 weights, more than max_weights=1000000" in str(exc) and peak < FLAT
    exc, _ = _peak(lambda: Network.load(tmp_path / "m", max_layers=0))
    assert "1 layers, more than max_layers=0" in str(exc)


def test_a_member_whose_zip_size_disagrees_with_its_npy_header_is_refused(tmp_path):
    _net().save(tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m.npz", "w", zipfile.ZIP_DEFLATED) as z:
        _write_npy_member(z, "w0.npy", (5, 4), 2**20)  # declares 160 bytes, holds 1 MiB
        _write_npy_member(z, "w1.npy", (3, 5), 3 * 5 * 8)
    exc, peak = _peak(lambda: Network.load(tmp_path / "m"))
    assert "w0.npy: its zip header declares" in str(exc) and peak < FLAT


@pytest.mark.parametrize(
    "members, message",
    [
        ({"w0.npy": (5, 4), "w1.npy": (3, 5), "extra.npy": (1,)}, "holds arrays"),
        ({"w0.npy": (5, 4), "w1": (3, 5)}, "holds arrays|not a readable"),
        ({"w0.npy": (5, 4), "w0": (5, 4), "w1.npy": (3, 5)}, "holds arrays"),
    ],
)
def test_unexpected_members_are_refused(tmp_path, members, message):
    _net().save(tmp_path / "m")
    with zipfile.ZipFile(tmp_path / "m.npz", "w") as z:
        for name, shape in members.items():
            _write_npy_member(z, name, shape, 8 * int(np.prod(shape)))
    with pytest.raises(ValueError, match=message):
        Network.load(tmp_path / "m")


def test_deeply_nested_json_is_refused_before_parsing(tmp_path):
    _net().save(tmp_path / "m")
    deep = '{"format": "batscope-network", "layers": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (tmp_path / "m.json").write_text(deep)
    with pytest.raises(ValueError, match="nested deeper than 16 levels"):
        Network.load(tmp_path / "m")
    # brackets inside strings do not count
    assert parse_json('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[\\"{{{{"}') == {
        "a": '[[[[[[[[[[[[[[[[[[[[[[[["{{{{'
    }


@pytest.mark.parametrize(
    "field, token",
    [("tau_s", "NaN"), ("theta", "Infinity"), ("reset", "-Infinity"), ("tau_s", "1e400")],
)
def test_non_finite_numbers_are_refused(tmp_path, field, token):
    net = _net()
    net.save(tmp_path / "m")
    text = json.dumps(net.config()).replace(
        f'"{field}": {net.layers[0].to_dict()[field]}', f'"{field}": {token}', 1
    )
    assert token in text
    (tmp_path / "m.json").write_text(text)
    with pytest.raises(ValueError, match=f"non-finite number {token}"):
        Network.load(tmp_path / "m")


def test_an_oversized_config_is_refused_unread(tmp_path):
    _net().save(tmp_path / "m")
    (tmp_path / "m.json").write_text(" " * (MAX_CONFIG_BYTES + 1) + "{}")
    with pytest.raises(ValueError, match=f"more than a config's {MAX_CONFIG_BYTES}"):
        Network.load(tmp_path / "m")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_inputs": 2.5}, "n_inputs must be an integer"),
        ({"n_inputs": True}, "n_inputs must be an integer"),
        ({"layers": [{"n": "5"}]}, r"layers\[0\].n must be an integer"),
        ({"layers": [7]}, r"layers\[0\].n must be an integer"),
        ({"layers": []}, "non-empty list"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_config_sizes_are_checked_before_building(tmp_path, change, message):
    net = _net()
    net.save(tmp_path / "m")
    (tmp_path / "m.json").write_text(json.dumps(net.config() | change))
    with pytest.raises(ValueError, match=message):
        Network.load(tmp_path / "m")


def test_a_genuine_file_still_loads_within_limits(tmp_path):
    net = _net(seed=4)
    net.save(tmp_path / "m")
    back = Network.load(tmp_path / "m", max_layers=2, max_weights=35, max_bytes=35 * 8)
    for a, b in zip(back.weights, net.weights, strict=True):
        np.testing.assert_array_equal(a, b)
