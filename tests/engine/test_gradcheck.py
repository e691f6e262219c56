"""Gradient check (engine/gradcheck.py): exact BATS gradients vs central finite differences."""

import numpy as np
import pytest
from batscope.engine.gradcheck import gradcheck
from batscope.engine.init import Normal
from batscope.engine.layers import Dense
from batscope.engine.losses import SpikeCountClass, SpikeTime, TTFSCrossEntropy
from batscope.engine.network import Network
from batscope.engine.spikes import SpikeTrains


def _net(sizes=(5, 3), dtype="float64"):
    """docs/backward.md §8: τs = 0.1, θ = 0.1, Δθ = 0.2, W ~ N(0.8, 0.6²), S = 20."""
    layers = [Dense(n, 0.1, 0.1, 0.2, n_max=20, init=Normal(0.8, 0.6)) for n in sizes]
    return Network(6, layers, dtype=dtype, seed=3)


def _inputs(batch=2, seed=1):
    rng = np.random.default_rng(seed)
    n = 25 * batch
    return SpikeTrains.from_events(
        np.repeat(np.arange(batch), 25), rng.integers(0, 6, n), rng.uniform(0, 0.5, n), batch, 6
    )


LABELS = np.array([0, 1])


@pytest.mark.parametrize("sizes", [(3,), (5, 3)])
def test_ttfs_ce_exact_matches_fd(sizes):
    res = gradcheck(_net(sizes), _inputs(), 1.0, TTFSCrossEntropy(0.1), LABELS, n_weights=8)
    assert res.function == "loss" and res.loss_exact
    assert len(res.compared) >= 4
    assert res.passed and res.max_scaled_error <= 1e-5
    assert {c.layer for c in res.compared} == set(range(len(sizes)))
    assert all(np.isnan(c.surrogate) for c in res.checks)


def test_spike_time_loss_exact_and_explicit_weights():
    net, inp = _net(), _inputs()
    out = net.forward(inp, 1.0)[-1]
    target = np.where(np.isfinite(out.times), out.times + 0.05, np.inf)
    res = gradcheck(net, inp, 1.0, SpikeTime(), target, weights=[(0, 0, 1), (1, 2, 4)])
    assert [(c.layer, c.post, c.pre) for c in res.checks] == [(0, 0, 1), (1, 2, 4)]
    for c in res.compared:
        assert abs(c.exact - c.fd) <= 1e-5 * max(1.0, abs(c.exact))


def test_spike_count_uses_labelled_probe_and_reports_surrogate():
    res = gradcheck(_net(), _inputs(), 1.0, SpikeCountClass(10, 0), LABELS, n_weights=6)
    assert res.function == "linear probe" and not res.loss_exact
    assert "surrogate" in res.label and "probe" in res.label
    assert res.passed
    assert all(np.isfinite(c.surrogate) for c in res.checks)


def test_network_untouched_and_float32_source():
    net = _net(dtype="float32")
    before = [np.array(w) for w in net.weights]
    res = gradcheck(net, _inputs(), 1.0, TTFSCrossEntropy(0.1), LABELS, n_weights=4)
    assert res.checks
    for a, b in zip(before, net.weights, strict=True):
        assert a.dtype == np.float32 and np.array_equal(a, b)


def test_count_change_is_skipped_and_said():
    # one input at t = 0 whose PSP peak w·τ/4 just exceeds θ: a 1e-3 perturbation removes the spike
    theta, tau_s = 1.0, 1.0
    net = Network(1, [Dense(1, tau_s, theta, n_max=1)], seed=0)
    net.weights = [np.array([[4 * theta / (2 * tau_s) * (1 + 1e-6)]])]
    inp = SpikeTrains.from_events([0], [0], [0.0], 1, 1)
    res = gradcheck(net, inp, 10.0, SpikeTime(), np.array([[[1.0]]]), weights=[(0, 0, 0)], eps=1e-3)
    (c,) = res.checks
    assert "spike count changed" in c.skipped and np.isnan(c.fd)
    assert not res.passed  # nothing compared


def test_bad_arguments():
    net, inp = _net(), _inputs()
    with pytest.raises(ValueError, match="eps"):
        gradcheck(net, inp, 1.0, TTFSCrossEntropy(), LABELS, eps=0.5)
    with pytest.raises(ValueError, match="weights"):
        gradcheck(net, inp, 1.0, TTFSCrossEntropy(), LABELS, weights=[(5, 0, 0)])
    with pytest.raises(TypeError, match="inp"):
        gradcheck(net, "x", 1.0, TTFSCrossEntropy(), LABELS)


def test_linear_probe_on_request():
    res = gradcheck(_net(), _inputs(), 1.0, TTFSCrossEntropy(0.1), LABELS, n_weights=6, probe=True)
    assert res.function == "linear probe" and res.loss_exact
    assert "surrogate" not in res.label and res.passed
    assert all(np.isnan(c.surrogate) for c in res.checks)
