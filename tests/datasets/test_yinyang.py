"""Yin-Yang (datasets/yinyang.py): the generator against its published rule; a short training."""

import numpy as np
import pytest
from batscope import datasets
from batscope.datasets.yinyang import (
    CLASS_NAMES,
    R_BIG,
    class_areas,
    encode_yinyang,
    generate_yinyang,
    load_yinyang,
    yinyang_class,
)
from batscope.engine import Adam, Dense, Network, Normal, SpikeCountClass, TTFSCrossEntropy


def test_class_areas_by_monte_carlo_match_the_analytic_areas():
    rng = np.random.default_rng(0)
    n = 400_000
    p = rng.uniform(0, 2 * R_BIG, size=(n, 2))
    inside = np.hypot(p[:, 0] - R_BIG, p[:, 1] - R_BIG) <= R_BIG
    labels = yinyang_class(p[inside, 0], p[inside, 1])
    areas = np.bincount(labels, minlength=3) / n * (2 * R_BIG) ** 2
    expected = class_areas()
    np.testing.assert_allclose(expected.sum(), np.pi * R_BIG**2)
    # binomial standard error of each area is below 1e-3 here: 5 sigma
    np.testing.assert_allclose(areas, expected, atol=5e-3)


def test_regions_follow_the_symbol():
    """Points whose class the rule fixes: dots, the two bulges, the two halves."""
    x = np.array([0.25, 0.75, 0.25, 0.75, 0.5, 0.5, 0.1, 0.9])
    y = np.array([0.5, 0.5, 0.35, 0.65, 0.9, 0.1, 0.55, 0.45])
    names = [CLASS_NAMES[c] for c in yinyang_class(x, y)]
    assert names == ["dot", "dot", "yin", "yang", "yin", "yang", "yin", "yang"]
    # half a turn about the centre swaps yin and yang and keeps the dots
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 1, size=(20_000, 2))
    p = p[np.hypot(p[:, 0] - 0.5, p[:, 1] - 0.5) <= 0.5]
    c, rot = yinyang_class(p[:, 0], p[:, 1]), yinyang_class(1 - p[:, 0], 1 - p[:, 1])
    assert np.array_equal(np.array([1, 0, 2])[c], rot)


def test_standard_splits_sizes_balance_features_and_disjointness():
    splits = {s: datasets.load("yin-yang", s) for s in ("train", "val", "test")}
    for split, n in (("train", 5000), ("val", 1000), ("test", 1000)):
        x, y = splits[split]
        assert x.shape == (n, 4) and x.dtype == np.float64 and y.dtype == np.int64
        # each class drawn with probability 1/3: counts within 5 binomial standard deviations
        assert np.abs(np.bincount(y, minlength=3) - n / 3).max() <= 5 * np.sqrt(n * 2 / 9)
        np.testing.assert_array_equal(x[:, 2:], 1 - x[:, :2])
        assert x.min() >= 0 and x.max() <= 1
        assert np.array_equal(yinyang_class(x[:, 0], x[:, 1]), y)
        assert (np.hypot(x[:, 0] - 0.5, x[:, 1] - 0.5) <= 0.5).all()
    seen = [set(map(tuple, splits[s][0][:, :2])) for s in splits]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])


def test_generator_is_deterministic_by_seed():
    a, b = generate_yinyang(300, seed=7), generate_yinyang(300, seed=7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], generate_yinyang(300, seed=8)[0])
    np.testing.assert_array_equal(load_yinyang("val")[0], datasets.load("yinyang", "val")[0])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="yin-yang split must be one of"):
        datasets.load("yin-yang", "validation")
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        generate_yinyang(10, seed=-1)
    with pytest.raises(ValueError, match="features must lie in"):
        encode_yinyang(np.full((2, 4), 1.5))
    with pytest.raises(ValueError, match=r"shape \[n, 4\]"):
        encode_yinyang(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="t_late"):
        encode_yinyang(np.zeros((2, 4)), t_early=0.02, t_late=0.01)


def test_encoding_times_and_bias_spike():
    x = np.array([[0.0, 0.5, 1.0, 0.25]])
    spikes = encode_yinyang(x, t_early=0.001, t_late=0.021, t_bias=0.01)
    np.testing.assert_allclose(spikes.times[0, :, 0], [0.001, 0.011, 0.021, 0.006, 0.01])
    assert spikes.counts.tolist() == [[1, 1, 1, 1, 1]]
    assert encode_yinyang(x, t_bias=None).n_neurons == 4


def _train(loss, n_max, hidden_init, lr, epochs=10, n_train=1500):
    x, y = datasets.load("yin-yang", "train")
    inp = encode_yinyang(x[:n_train])
    layers = [
        Dense(30, 0.01, 0.03, n_max=n_max, init=Normal(*hidden_init)),
        Dense(3, 0.01, 0.03, n_max=n_max, init=Normal(6, 2)),
    ]
    net, opt, rng = Network(5, layers, seed=1), Adam(lr), np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(n_train)
        for s in range(0, n_train, 20):
            idx = order[s : s + 20]
            out = net.forward(inp.take(idx), 0.06)
            grads = net.backward(loss.errors(out[-1], y[idx]))
            opt.step(net.weights, [g / len(idx) for g in grads])
    xt, yt = datasets.load("yin-yang", "test")
    out = net.forward(encode_yinyang(xt), 0.06)
    return float((np.asarray(loss.predict(out[-1])) == yt).mean())


def test_short_single_spike_training_beats_chance():
    """Time-to-first-spike cross-entropy, one spike per neuron: 1.5 k samples × 10 epochs."""
    assert _train(TTFSCrossEntropy(0.005), n_max=1, hidden_init=(0, 6), lr=5e-3) >= 0.6


def test_short_multi_spike_training_beats_chance():
    """Spike-count loss, up to 10 spikes per neuron: 1.5 k samples × 10 epochs."""
    assert _train(SpikeCountClass(5, 1), n_max=10, hidden_init=(1, 5), lr=1e-2) >= 0.6
