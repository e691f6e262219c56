"""Elastic distortion: seeded determinism, shape and dtype, sensible displacement."""

import numpy as np
import pytest
from batscope.datasets import elastic_distort, load_sample


def test_deterministic_shape_dtype():
    x, _ = load_sample("mnist", "test")
    x = x[:16]
    a = elastic_distort(x, sigma=1.0, points=2, seed=5)
    b = elastic_distort(x, sigma=1.0, points=2, seed=5)
    c = elastic_distort(x, sigma=1.0, points=2, seed=6)
    assert a.shape == x.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # nearest-neighbour: every output value is one of the input's values (or the fill 0)
    assert set(np.unique(a[0])) <= set(np.unique(x[0])) | {0}


def test_zero_sigma_is_identity_and_small_change():
    x, _ = load_sample("mnist", "train")
    x = x[:32]
    np.testing.assert_array_equal(elastic_distort(x, sigma=0.0, seed=1), x)
    y = elastic_distort(x, sigma=1.0, seed=1)
    changed = np.mean(y != x)
    assert 0.0 < changed < 0.5


def test_single_image_and_channels():
    x = np.random.default_rng(0).random((10, 12))
    assert elastic_distort(x, seed=0).shape == (10, 12)
    xc = np.random.default_rng(0).integers(0, 255, (2, 10, 12, 3), dtype=np.uint8)
    yc = elastic_distort(xc, seed=0)
    assert yc.shape == xc.shape
    with pytest.raises(ValueError):
        elastic_distort(xc, points=1)
