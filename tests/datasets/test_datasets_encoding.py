"""TTFS encoding: the exact formula, silent zeros, shapes and dtypes (docs/training.md §1)."""

import numpy as np
import pytest
from batscope.datasets import encode_ttfs, ttfs_times
from batscope.engine.spikes import SpikeTrains


def test_exact_formula_and_counts():
    x = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    s = encode_ttfs(x, t_enc=0.1)
    assert isinstance(s, SpikeTrains)
    assert s.times.shape == (1, 256, 1) and s.times.dtype == np.float64
    assert s.counts.shape == (1, 256) and s.counts.dtype == np.int32
    t = s.times[0, :, 0]
    v = np.arange(256)
    np.testing.assert_array_equal(t[1:], 0.1 * (1.0 - v[1:] / 255.0))
    assert np.isinf(t[0]) and t[0] > 0
    assert t[255] == 0.0
    np.testing.assert_array_equal(s.counts[0], (v > 0).astype(np.int32))
    SpikeTrains.from_arrays(s.times, s.counts)  # passes the engine's validation


def test_t_enc_and_float32():
    x = np.array([[0, 51, 255]], np.uint8)
    s = encode_ttfs(x, t_enc=2.0, dtype="float32")
    assert s.times.dtype == np.float32
    np.testing.assert_array_equal(
        s.times[0, :, 0], np.array([np.inf, 2.0 * (1 - 51 / 255), 0.0]).astype(np.float32)
    )


def test_neuron_order_and_image_shape():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    s, shape = encode_ttfs(x, flatten=False)
    assert shape == (4, 5, 1)
    r, c = 2, 3
    assert s.times[1, r * 5 + c, 0] == ttfs_times(x)[1, r, c]
    np.testing.assert_array_equal(s.times.reshape(3, *shape, 1)[..., 0, 0], ttfs_times(x))
    xc = rng.integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    sc, shape_c = encode_ttfs(xc, flatten=False)
    assert shape_c == (4, 5, 3) and sc.times.shape == (2, 60, 1)


def test_input_checks():
    with pytest.raises(ValueError):
        encode_ttfs(np.array([[256.0]]))
    with pytest.raises(ValueError):
        encode_ttfs(np.array([[-1.0]]))
    with pytest.raises(ValueError):
        encode_ttfs(np.array([3], np.uint8))
    with pytest.raises(ValueError):
        encode_ttfs(np.ones((1, 2), np.uint8), t_enc=0)
