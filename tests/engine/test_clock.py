"""Clock-based simulation (engine/clock.py): converges to the exact spike times as dt → 0."""

import math

import numpy as np
import pytest
from batscope.engine.clock import compare, error_vs_dt, simulate_layer, simulate_network
from batscope.engine.init import Normal
from batscope.engine.layers import Dense
from batscope.engine.network import Network
from batscope.engine.spikes import SpikeTrains


def _single_input():
    return SpikeTrains.from_events([0], [0], [0.0], 1, 1)


def _exact_first_spike(w, theta, tau_s):
    """One input of weight w at t = 0: the root of A z² − B z + c = 0 with A = B = w
    (docs/forward.md §2)."""
    tau, c = 2 * tau_s, theta / (2 * tau_s)
    x = math.sqrt(w * w - 4 * w * c)
    return tau * math.log(2 * w / (w + x))


@pytest.mark.parametrize("method", ["euler", "exact"])
def test_single_neuron_error_shrinks_linearly_with_dt(method):
    ws = np.linspace(3.0, 6.0, 25)  # 25 neurons, one input each: averages out grid phase
    t_exact = np.array([_exact_first_spike(w, 1.0, 1.0) for w in ws])
    errs = []
    for dt in (1e-2, 1e-3, 1e-4):
        out = simulate_layer(_single_input(), ws[:, None], 1.0, 1.0, 1.0, 1, 10.0, dt, method)
        assert (out.counts == 1).all()
        err = np.abs(out.times[0, :, 0] - t_exact)
        assert err.max() <= 2 * dt  # grid quantisation plus O(dt) integration error
        errs.append(err.mean())
    assert 4 < errs[0] / errs[1] < 25 and 4 < errs[1] / errs[2] < 25  # error roughly ∝ dt


def _net(n_layers=1, seed=3):
    layers = [Dense(3, 0.1, 0.1, 0.2, n_max=20, init=Normal(0.8, 0.6)) for _ in range(n_layers)]
    return Network(6, layers, seed=seed)


def _inputs(batch=2, seed=1):
    rng = np.random.default_rng(seed)
    n = 25 * batch
    return SpikeTrains.from_events(
        np.repeat(np.arange(batch), 25), rng.integers(0, 6, n), rng.uniform(0, 0.5, n), batch, 6
    )


def test_matches_exact_engine_at_small_dt():
    net, inp = _net(), _inputs()
    exact = net.forward(inp, 1.0)
    cmp = error_vs_dt(net, inp, 1.0, [1e-3, 1e-4, 1e-5], exact=exact)
    assert exact[-1].n_spikes > 10
    assert cmp[-1].count_mismatch == 0  # equal counts at small dt
    assert cmp[-1].matched == exact[-1].n_spikes
    assert cmp[-1].max_abs_error < 2e-4
    assert cmp[0].mean_abs_error > cmp[1].mean_abs_error > cmp[2].mean_abs_error
    assert 3 < cmp[1].mean_abs_error / cmp[2].mean_abs_error < 30


def test_two_layer_network_and_buffer():
    net, inp = _net(2), _inputs()
    outs = simulate_network(net, inp, 1.0, 1e-4)
    assert len(outs) == 2
    assert all(o.counts.max() <= 20 for o in outs)
    exact = net.forward(inp, 1.0)
    c = compare(exact[1], outs[1])
    assert c.pairs == 6 and c.matched > 0 and c.max_abs_error < 1e-2


def test_no_input_no_spike_and_truncation():
    empty = SpikeTrains.empty(1, 1)
    out = simulate_layer(empty, np.ones((2, 1)), 1.0, 1.0, 1.0, 3, 5.0, 1e-3)
    assert out.counts.tolist() == [[0, 0]]
    strong = simulate_layer(_single_input(), np.array([[200.0]]), 1.0, 1.0, 1.0, 3, 10.0, 1e-3)
    assert strong.counts[0, 0] == 3  # buffer S = 3 truncates


def test_bad_arguments():
    inp = _single_input()
    with pytest.raises(ValueError, match="dt"):
        simulate_layer(inp, np.ones((1, 1)), 1.0, 1.0, 1.0, 1, 1.0, 0.0)
    with pytest.raises(ValueError, match="method"):
        simulate_layer(inp, np.ones((1, 1)), 1.0, 1.0, 1.0, 1, 1.0, 1e-3, method="rk4")
    with pytest.raises(ValueError, match="W"):
        simulate_layer(inp, np.ones((1, 2)), 1.0, 1.0, 1.0, 1, 1.0, 1e-3)
    with pytest.raises(TypeError, match="inp"):
        simulate_layer(np.zeros((1, 1, 1)), np.ones((1, 1)), 1.0, 1.0, 1.0, 1, 1.0, 1e-3)
