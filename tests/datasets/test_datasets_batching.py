"""Seeded mini-batches and the train/validation split."""

import numpy as np
import pytest
from batscope.datasets import batches, n_batches, train_val_split


def test_deterministic_for_seed_and_epoch():
    a = [b.copy() for b in batches(103, 10, seed=7, epoch=3)]
    b = list(batches(103, 10, seed=7, epoch=3))
    assert len(a) == 10 == n_batches(103, 10)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    other = np.concatenate(list(batches(103, 10, seed=7, epoch=4)))
    assert not np.array_equal(np.concatenate(a), other)
    other_seed = np.concatenate(list(batches(103, 10, seed=8, epoch=3)))
    assert not np.array_equal(np.concatenate(a), other_seed)


def test_drop_last_and_coverage():
    full = np.concatenate(list(batches(103, 10, seed=0, drop_last=False)))
    assert np.array_equal(np.sort(full), np.arange(103))
    kept = np.concatenate(list(batches(103, 10, seed=0)))
    assert kept.size == 100 and np.unique(kept).size == 100
    assert all(b.size == 10 for b in batches(103, 10, seed=0))
    plain = np.concatenate(list(batches(25, 10, shuffle=False, drop_last=False)))
    assert np.array_equal(plain, np.arange(25))


def test_train_val_split():
    tr, va = train_val_split(1000, 100, seed=3)
    assert tr.size == 900 and va.size == 100
    assert np.intersect1d(tr, va).size == 0
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(1000))
    tr2, va2 = train_val_split(1000, 100, seed=3)
    assert np.array_equal(va, va2)
    tr0, va0 = train_val_split(60000, 5000)
    assert np.array_equal(va0, np.arange(55000, 60000)) and tr0.size == 55000
    with pytest.raises(ValueError):
        train_val_split(10, 10)
