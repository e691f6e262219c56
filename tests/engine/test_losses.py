"""Losses (docs/losses.md §1): values, errors, silent cases, predictions, purity, validation."""

import copy
import warnings

import numpy as np
import pytest
from batscope.engine.losses import (
    SpikeCount,
    SpikeCountClass,
    SpikeTime,
    TTFSCrossEntropy,
    loss_from_dict,
)
from batscope.engine.spikes import SpikeTrains

INF = np.inf


def trains(rows, dtype="float64"):
    """SpikeTrains from nested lists [B][N][S] (inf padded)."""
    return SpikeTrains.from_arrays(np.array(rows, dtype=dtype))


def random_trains(rng, b=5, n=4, s=3, p_silent=0.2):
    times = np.sort(rng.uniform(0.0, 1.0, (b, n, s)), axis=2)
    counts = rng.integers(0, s + 1, (b, n))
    counts[rng.random((b, n)) < p_silent] = 0
    times[np.arange(s)[None, None, :] >= counts[..., None]] = INF
    return SpikeTrains.from_arrays(times)


def fd_errors(loss, out, target, eps=1e-6):
    """Central differences of sum_b L_b w.r.t. every emitted spike time (order kept)."""
    g = np.zeros(out.times.shape)
    for b, j, k in zip(*np.nonzero(np.isfinite(out.times)), strict=True):
        vals = []
        for sgn in (1, -1):
            t = out.times.copy()
            t[b, j, k] += sgn * eps
            vals.append(loss.loss(SpikeTrains(t, out.counts), target).sum())
        g[b, j, k] = (vals[0] - vals[1]) / (2 * eps)
    return g


# ---------------------------------------------------------------- spike counts (surrogate)


def test_spike_count_class_errors_equal_y_minus_n_exactly():
    out = random_trains(np.random.default_rng(0), b=6, n=3, s=4)
    labels = np.array([0, 1, 2, 0, 1, 2])
    lf = SpikeCountClass(y_true=4, y_false=1)
    loss, err = lf.loss_and_errors(out, labels)
    y = np.where(labels[:, None] == np.arange(3), 4.0, 1.0)
    d = y - out.counts
    emitted = np.arange(4)[None, None, :] < out.counts[..., None]
    np.testing.assert_array_equal(err, np.where(emitted, d[..., None], 0.0))
    np.testing.assert_array_equal(loss, 0.5 * (d**2).sum(axis=1))
    assert err.dtype == out.dtype and loss.shape == (6,)
    assert lf.exact is False and SpikeCount.exact is False


def test_spike_count_real_targets_and_float32():
    out = random_trains(np.random.default_rng(1), b=3, n=2, s=3)
    out32 = out.astype("float32")
    y = np.array([[2.5, 0.0], [1.0, 3.0], [0.0, 0.0]])
    loss, err = SpikeCount().loss_and_errors(out32, y)
    assert err.dtype == np.float32 and loss.dtype == np.float32
    emitted = np.isfinite(out.times)
    np.testing.assert_array_equal(err, np.where(emitted, (y - out.counts)[..., None], 0))
    np.testing.assert_allclose(loss, 0.5 * ((y - out.counts) ** 2).sum(1), rtol=1e-6)


def test_count_predict_reference_and_strict():
    c = np.array([[3, 1], [2, 2], [0, 0], [0, 4]])
    times = np.full((4, 2, 5), INF)
    for b, j in np.ndindex(4, 2):
        times[b, j, : c[b, j]] = np.linspace(0.1, 0.5, 5)[: c[b, j]]
    out = SpikeTrains.from_arrays(times)
    lf = SpikeCountClass()
    np.testing.assert_array_equal(lf.predict(out), [0, 0, 0, 1])  # ties/silence -> lowest index
    np.testing.assert_array_equal(lf.predict(out, mode="strict"), [0, -1, -1, 1])
    with pytest.raises(ValueError, match="mode"):
        lf.predict(out, mode="loose")


def test_unreachable_count_target_warns_once():
    lf = SpikeCountClass(y_true=15, y_false=3)
    with pytest.warns(RuntimeWarning, match="n_max"):
        assert lf.check_reachable(10) is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lf.check_reachable(10) is False  # no second warning
        assert lf.check_reachable(30) is True
    out = random_trains(np.random.default_rng(2), b=2, n=2, s=4)
    with pytest.warns(RuntimeWarning, match="cannot be reached"):
        SpikeCountClass(y_true=10, y_false=0).errors(out, np.array([0, 1]))
    with pytest.warns(RuntimeWarning, match="exceeds"):
        SpikeCount().errors(out, np.array([[5.0, 0.0], [0.0, 0.0]]))
    assert SpikeCount().check_reachable(4, np.array([[4.0]])) is True


# ---------------------------------------------------------------- TTFS cross-entropy (exact)


def test_ttfs_ce_matches_softmax_and_finite_differences():
    rng = np.random.default_rng(3)
    times = np.sort(rng.uniform(0.0, 0.05, (4, 3, 2)), axis=2)
    out = SpikeTrains.from_arrays(times)
    labels = np.array([0, 1, 2, 1])
    lf = TTFSCrossEntropy(tau_l=0.01)
    loss, err = lf.loss_and_errors(out, labels)
    s = -times[:, :, 0] / 0.01
    p = np.exp(s) / np.exp(s).sum(1, keepdims=True)
    np.testing.assert_allclose(loss, -np.log(p[np.arange(4), labels]), rtol=1e-12)
    fd = fd_errors(lf, out, labels, eps=1e-7)
    np.testing.assert_allclose(err, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    assert (err[:, :, 1] == 0).all() and lf.exact is True


def test_ttfs_ce_very_late_spikes_float32_no_nan():
    # 100 s / 0.005 s = 2e4 >> 87: the naive e^{-t/tau_L} underflows to 0/0 in float32
    times = np.array([[[100.0], [100.01]], [[100.02], [100.0]], [[100.0], [INF]]])
    out = SpikeTrains.from_arrays(times, dtype="float32")
    lf = TTFSCrossEntropy(tau_l=0.005)
    loss, err = lf.loss_and_errors(out, np.array([0, 0, 1]))
    assert loss.dtype == np.float32 and err.dtype == np.float32
    assert np.isfinite(loss[:2]).all() and not np.isnan(err).any()
    # sample 0: label 0 first by 2 tau_L: p = softmax(0, -2)
    np.testing.assert_allclose(loss[0], np.log1p(np.exp(-2.0)), rtol=1e-3)
    # sample 1: label 0 late by 4 tau_L: L ≈ 4 + log(1 + e^-4)
    np.testing.assert_allclose(loss[1], 4 + np.log1p(np.exp(-4.0)), rtol=1e-3)
    assert loss[2] == np.inf  # label silent


def test_ttfs_ce_silent_label_and_all_silent():
    times = np.array([[[0.01], [0.02], [INF]], [[INF], [INF], [INF]]])
    out = SpikeTrains.from_arrays(times)
    lf = TTFSCrossEntropy(tau_l=0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from inf - inf or 0/0
        loss, err = lf.loss_and_errors(out, np.array([2, 0]))
    assert loss[0] == np.inf and loss[1] == np.inf
    p = np.exp([-1.0, -2.0]) / np.exp([-1.0, -2.0]).sum()
    np.testing.assert_allclose(err[0, :2, 0], -p / 0.01, rtol=1e-12)
    assert err[0, 2, 0] == 0  # the silent label neuron has no slot to carry an error
    assert (err[1] == 0).all() and not np.isnan(err).any()
    assert lf.stats(out, np.array([2, 0])) == {"silent_label": 2, "all_silent": 1}
    np.testing.assert_array_equal(lf.predict(out), [0, 0])
    np.testing.assert_array_equal(lf.predict(out, mode="strict"), [0, -1])


def test_first_spike_predict_uses_first_slot_only():
    times = np.array(
        [
            [[0.3, 0.4], [0.2, INF]],  # neuron 1 first
            [[0.1, 0.2], [0.1, 0.15]],  # tie on the first slot
            [[0.5, 0.6], [INF, INF]],
        ]
    )
    out = SpikeTrains.from_arrays(times)
    for lf in (TTFSCrossEntropy(), SpikeTime()):
        pred = lf.predict(out)
        assert pred.shape == (3,)
        np.testing.assert_array_equal(pred, [1, 0, 0])
        np.testing.assert_array_equal(lf.predict(out, mode="strict"), [1, -1, 0])


# ---------------------------------------------------------------- spike time (exact)


def test_spike_time_loss_errors_fd_and_missing():
    rng = np.random.default_rng(4)
    out = random_trains(rng, b=4, n=3, s=3, p_silent=0.3)
    targets = rng.uniform(0.0, 1.0, out.times.shape)
    targets[rng.random(targets.shape) < 0.3] = INF
    lf = SpikeTime()
    loss, err = lf.loss_and_errors(out, targets)
    k = np.isfinite(out.times) & np.isfinite(targets)
    expect = np.where(k, out.times - np.where(k, targets, 0), 0)
    np.testing.assert_array_equal(err, expect)
    np.testing.assert_allclose(loss, 0.5 * (expect**2).sum(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(err, fd_errors(lf, out, targets), atol=1e-7)
    st = lf.stats(out, targets)
    assert st["missing"] == int((~np.isfinite(out.times) & np.isfinite(targets)).sum())
    assert st["matched"] == int(k.sum()) and st["missing"] > 0


def test_losses_are_pure():
    rng = np.random.default_rng(5)
    out = random_trains(rng, b=3, n=3, s=2)
    t0, c0 = out.times.copy(), out.counts.copy()
    labels = np.array([0, 2, 1])
    targets = np.where(rng.random(out.times.shape) < 0.5, INF, 0.3)
    cases = [
        (SpikeCountClass(2, 0), labels),
        (SpikeCount(), np.ones((3, 3))),
        (TTFSCrossEntropy(0.1), labels),
        (SpikeTime(), targets),
    ]
    for lf, tgt in cases:
        tgt0 = copy.deepcopy(tgt)
        _, err = lf.loss_and_errors(out, tgt)
        err += 1.0  # writing into the result must not reach the inputs
        lf.predict(out, mode="strict")
        np.testing.assert_array_equal(out.times, t0)
        np.testing.assert_array_equal(out.counts, c0)
        np.testing.assert_array_equal(tgt, tgt0)


# ---------------------------------------------------------------- validation, serialisation


@pytest.mark.parametrize(
    "labels, exc, word",
    [
        (np.array([0, 1]), ValueError, "shape"),
        (np.array([0, 1, 3]), ValueError, "labels"),
        (np.array([0, -1, 1]), ValueError, "labels"),
        (np.array([0.0, 1.0, 1.0]), TypeError, "labels"),
        (np.array([True, False, True]), TypeError, "labels"),
    ],
)
def test_label_validation(labels, exc, word):
    out = random_trains(np.random.default_rng(6), b=3, n=3, s=2)
    for lf in (SpikeCountClass(), TTFSCrossEntropy()):
        with pytest.raises(exc, match=word):
            lf.loss(out, labels)


def test_target_and_parameter_validation():
    out = random_trains(np.random.default_rng(7), b=2, n=2, s=2)
    with pytest.raises(ValueError, match="targets"):
        SpikeCount().loss(out, np.array([[1.0, INF], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="shape"):
        SpikeCount().loss(out, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        SpikeTime().loss(out, np.full((2, 2, 2), np.nan))
    with pytest.raises(ValueError, match="targets"):
        SpikeTime().loss(out, np.full((2, 2, 2), -INF))
    with pytest.raises(ValueError, match="shape"):
        SpikeTime().loss(out, np.zeros((2, 2, 3)))
    with pytest.raises(TypeError, match="out"):
        SpikeTime().loss(out.times, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="tau_l"):
        TTFSCrossEntropy(tau_l=0.0)
    with pytest.raises(ValueError, match="y_true"):
        SpikeCountClass(y_true=-1)
    with pytest.raises(TypeError, match="y_false"):
        SpikeCountClass(y_false="3")


def test_to_dict_round_trip():
    for lf in (SpikeCountClass(10, 0), SpikeCount(), TTFSCrossEntropy(0.1), SpikeTime()):
        d = lf.to_dict()
        back = loss_from_dict(d)
        assert type(back) is type(lf) and back.to_dict() == d
    with pytest.raises(ValueError, match="type"):
        loss_from_dict({"type": "Hinge"})
    with pytest.raises(ValueError, match="unknown keys"):
        loss_from_dict({"type": "SpikeTime", "tau_l": 1.0})


# ---------------------------------------------------------------- end to end through a Network


def _two_layer_net():
    """6 → 5 → 3, float64, Δθ ≠ θ; every output neuron fires several times, none saturates."""
    from batscope.engine import Dense, Network, Normal

    hidden = Dense(5, tau_s=0.1, theta=0.2, reset=0.3, n_max=8, init=Normal(1.5, 1.0))
    output = Dense(3, tau_s=0.1, theta=0.2, reset=0.3, n_max=12, init=Normal(0.5, 0.8))
    net = Network(6, [hidden, output], dtype="float64", seed=0)
    times = np.sort(np.random.default_rng(0).uniform(0.0, 0.5, (3, 6, 2)), axis=2)
    return net, SpikeTrains.from_arrays(times)


def _weight_fd_check(loss_fn, make_target, eps=1e-7, rtol=1e-5):
    """Analytic dL/dW (loss errors → Network.backward) vs central differences of sum_b L_b."""
    net, inp = _two_layer_net()
    outs = net.forward(inp, t_max=1.0)
    assert all((o.counts < layer.n_max).all() for o, layer in zip(outs, net.layers, strict=True))
    assert (outs[-1].counts > 0).all()
    target = make_target(outs[-1])
    counts0 = [o.counts.copy() for o in outs]
    grads = net.backward(loss_fn.errors(outs[-1], target))
    base = [w.copy() for w in net.weights]
    checked = skipped = 0
    worst = 0.0
    for layer, g in enumerate(grads):
        for idx in np.ndindex(g.shape):
            vals = []
            for sgn in (1.0, -1.0):
                w = [b.copy() for b in base]
                w[layer][idx] += sgn * eps
                net.weights = w
                outs = net.forward(inp, t_max=1.0)
                if any((o.counts != c).any() for o, c in zip(outs, counts0, strict=True)):
                    break  # a spike appeared or vanished: the map is only piecewise smooth
                vals.append(loss_fn.loss(outs[-1], target).sum())
            if len(vals) < 2:
                skipped += 1
                continue
            fd = (vals[0] - vals[1]) / (2 * eps)
            err = abs(g[idx] - fd) / max(1.0, abs(g[idx]))
            worst = max(worst, err)
            checked += 1
    assert worst <= rtol, worst
    assert checked >= 0.8 * (checked + skipped) and checked > 30
    return worst


def test_ttfs_ce_weight_gradient_matches_fd_through_network():
    _weight_fd_check(TTFSCrossEntropy(tau_l=0.05), lambda out: np.array([1, 2, 0]))


def test_spike_time_weight_gradient_matches_fd_through_network():
    def targets(out):
        rng = np.random.default_rng(1)
        y = out.times + rng.normal(0.0, 0.02, out.times.shape)
        y[rng.random(y.shape) < 0.3] = INF  # slots without a target
        y[:, :, -1] = 0.9  # past every emitted spike: counted as missing, no gradient
        return y

    _weight_fd_check(SpikeTime(), targets)
