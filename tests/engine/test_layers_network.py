"""Dense/initialisers (round trips, seeding) and the Network's bookkeeping."""

import numpy as np
import pytest
from batscope.engine import Dense, ErrorComponents, Network, Normal, SpikeTrains, Uniform
from batscope.engine.init import initializer_from_dict
from batscope.engine.layers import Dense as DenseDirect


def test_dense_defaults_and_round_trip():
    d = Dense(10, 0.13, 1.3)
    assert d.reset == 1.3 and d.n_max == 30 and d.tau == pytest.approx(0.26)
    assert d.init == Uniform(-1.0, 1.0)
    e = Dense(4, 1.0, 1.0, reset=0.5, n_max=1, init=Normal(0.2, 0.1))
    assert DenseDirect.from_dict(e.to_dict()) == e
    assert initializer_from_dict(Normal(1, 2).to_dict()) == Normal(1, 2)
    assert "reset=0.5" in repr(e)


def test_initializers_draw_the_documented_distributions():
    rng = np.random.default_rng(0)
    u = Uniform(0, 1).init(rng, (400, 500), "float32")
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() <= 1
    assert abs(u.mean() - 0.5) < 0.01
    n = Normal(2.0, 0.0).init(rng, (3, 3))
    assert (n == 2.0).all()  # sigma = 0: every weight equals mu (docs/training.md §4)


def test_network_seeding_and_shapes():
    layers = [Dense(7, 0.1, 0.1), Dense(3, 0.1, 0.1)]
    a = Network(5, layers, seed=11)
    b = Network(5, layers, seed=11)
    c = Network(5, layers, seed=12)
    assert a.sizes == [5, 7, 3] and [w.shape for w in a.weights] == [(7, 5), (3, 7)]
    np.testing.assert_array_equal(a.weights[1], b.weights[1])
    assert not np.array_equal(a.weights[0], c.weights[0])
    # layer by layer in order from one generator
    rng = np.random.default_rng(11)
    np.testing.assert_array_equal(a.weights[0], Uniform(-1, 1).init(rng, (7, 5)))
    np.testing.assert_array_equal(a.weights[1], Uniform(-1, 1).init(rng, (3, 7)))
    assert "5-7-3" in repr(a)


def test_forward_state_and_error_components():
    rng = np.random.default_rng(1)
    net = Network(6, [Dense(5, 0.1, 0.1, 0.2, 20, Normal(1.5, 1.0)), Dense(3, 0.1, 0.1)], seed=1)
    times = np.sort(rng.uniform(0, 0.4, (3, 6, 2)), axis=2)
    outs = net.forward(SpikeTrains.from_arrays(times.astype(np.float32)), 1.0)  # cast to f64
    assert net.inputs.times.dtype == np.float64 and net.t_max == 1.0
    assert len(outs) == 2 and outs[0].times.shape == (3, 5, 20) and outs[1].n_slots == 30
    assert [u.shape for u in net.udot] == [(3, 5, 20), (3, 3, 30)]
    assert net.saturation == [int((outs[0].counts == 20).sum()), 0]
    assert net.error_components is None
    err = np.where(np.isfinite(outs[1].times), 1.0, 0.0)
    grads = net.backward(err)
    assert [g.shape for g in grads] == [(5, 6), (3, 5)]
    assert net.input_errors is None
    comps = net.error_components
    assert len(comps) == 2 and all(isinstance(c, ErrorComponents) for c in comps)
    for c in comps:
        np.testing.assert_allclose(c.delta, c.phi + c.mu, atol=1e-12)
    # phi of layer 0 is what layer 1 sends back (docs/backward.md §5)
    assert np.abs(comps[0].phi).max() > 0
    # a new forward clears the backward products
    net.forward(SpikeTrains.from_arrays(times), 1.0)
    assert net.error_components is None


def test_to_same_backend_keeps_weights():
    net = Network(3, [Dense(2, 0.1, 0.1)], seed=0)
    w = net.weights[0].copy()
    assert net.to("cpu") is net
    np.testing.assert_array_equal(net.weights[0], w)


def test_bench_smoke():
    from batscope.engine.bench import run

    res = run("cpu", batch=10, samples=20, dtype="float32")
    assert res["backend"] == "cpu" and res["batch"] == 10 and res["samples"] == 20
    assert res["forward_samples_per_s"] > 0 and res["train_samples_per_s"] > 0
    assert res["source"] in ("mnist", "synthetic")
    assert 100 < res["input_spikes_per_sample"] < 300


def test_concurrent_networks_in_threads_match_sequential():
    """Sessions train in worker threads; the nogil kernels must give the same results there."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(3)
    inputs = [
        SpikeTrains.from_arrays(np.sort(rng.uniform(0, 0.3, (8, 20, 2)), axis=2)) for _ in range(4)
    ]

    def job(k):
        net = Network(20, [Dense(30, 0.1, 0.1, init=Normal(1, 1)), Dense(4, 0.1, 0.2)], seed=k)
        outs = net.forward(inputs[k], 1.0)
        grads = net.backward(np.where(np.isfinite(outs[-1].times), 1.0, 0.0))
        return outs[0].times, grads[0]

    sequential = [job(k) for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(job, range(4)))
    for (t1, g1), (t2, g2) in zip(sequential, threaded, strict=True):
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_array_equal(g1, g2)
