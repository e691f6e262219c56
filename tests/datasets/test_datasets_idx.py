"""IDX parsing: round trips, raw and gzip, and clear errors for corrupt or truncated files."""

import gzip

import numpy as np
import pytest
from batscope.datasets.idx import idx_bytes, parse_idx, read_idx, write_idx


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_round_trip_dtypes(dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    b = parse_idx(idx_bytes(a))
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)


def test_raw_and_gz_files_read_alike(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    raw = write_idx(tmp_path / "x-idx3-ubyte", a)
    gz = write_idx(tmp_path / "x-idx3-ubyte.gz", a)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(raw), a)
    np.testing.assert_array_equal(read_idx(gz), a)
    # detection is by content: a gzip file without the .gz suffix still works
    odd = tmp_path / "noext"
    odd.write_bytes(gz.read_bytes())
    np.testing.assert_array_equal(read_idx(odd), a)


def test_magic_header_checks():
    a = np.zeros((2, 3), np.uint8)
    data = bytearray(idx_bytes(a))
    with pytest.raises(ValueError, match="magic"):
        parse_idx(b"\x01" + bytes(data[1:]))
    bad = bytearray(data)
    bad[2] = 0x42
    with pytest.raises(ValueError, match="dtype code"):
        parse_idx(bytes(bad))
    with pytest.raises(ValueError, match="expected 3"):
        parse_idx(bytes(data), expect_ndim=3)
    with pytest.raises(ValueError, match="too short"):
        parse_idx(b"\x00\x00")
    with pytest.raises(ValueError, match="header"):
        parse_idx(bytes(data[:6]))


def test_truncated_and_trailing(tmp_path):
    a = np.ones((4, 5, 5), np.uint8)
    data = idx_bytes(a)
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(data[:-1], name="f")
    with pytest.raises(ValueError, match="trailing"):
        parse_idx(data + b"\x00")
    # a truncated gzip stream is a ValueError naming the file
    p = tmp_path / "t.gz"
    p.write_bytes(gzip.compress(data)[:-20])
    with pytest.raises(ValueError, match="t.gz"):
        read_idx(p)


def test_big_endian_values():
    a = np.array([1, -2, 300000], np.int32)
    data = idx_bytes(a)
    assert data[4:8] == (3).to_bytes(4, "big")
    assert data[8:12] == (1).to_bytes(4, "big")
    np.testing.assert_array_equal(parse_idx(data), a)
