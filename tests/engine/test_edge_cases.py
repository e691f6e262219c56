"""Edge cases of the exact forward/backward (docs/forward.md §6.1–§6.8,
docs/implementation.md §1)."""

import numpy as np
import pytest
from batscope.engine import Dense, Network, Normal, SpikeTrains, Uniform, cpu

TAU_S = 0.1


def _rand_inputs(batch=4, n_in=8, k=3, seed=0, t_hi=0.5):
    rng = np.random.default_rng(seed)
    return SpikeTrains.from_arrays(np.sort(rng.uniform(0, t_hi, (batch, n_in, k)), axis=2))


def _forward(times, counts, w, theta=0.1, reset=None, n_max=30, t_max=1.0, group=None):
    times = np.asarray(times, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    group = np.zeros(times.shape[0], np.int32) if group is None else group
    return cpu.dense_forward(
        times, counts, w, group, TAU_S, theta, theta if reset is None else reset, n_max, t_max
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_no_input_spikes_gives_silence_and_zero_gradients(dtype):
    net = Network(5, [Dense(4, TAU_S, 0.1), Dense(2, TAU_S, 0.1)], dtype=dtype)
    outs = net.forward(SpikeTrains.empty(3, 5, 2, dtype=dtype), 1.0)
    for o in outs:
        assert o.counts.sum() == 0 and np.isinf(o.times).all()
        assert o.times.dtype == np.dtype(dtype)
    assert (net.udot[0] == 0).all()
    grads = net.backward(np.ones((3, 2, 30)), input_errors=True)
    assert all((g == 0).all() for g in grads)
    assert (net.input_errors == 0).all()
    st = net.stats()
    assert st[0]["spikes_per_sample"] == 0 and st[0]["active_fraction"] == 0
    assert np.isnan(st[0]["min_udot"])


def test_silent_layer_blocks_everything_downstream():
    net = Network(8, [Dense(6, TAU_S, 0.1, init=Uniform(-2, -1)), Dense(3, TAU_S, 0.1)])
    outs = net.forward(_rand_inputs(), 1.0)
    assert outs[0].counts.sum() == 0 and outs[1].counts.sum() == 0
    grads = net.backward(np.ones((4, 3, 30)))
    assert (grads[0] == 0).all() and (grads[1] == 0).all()  # dead neurons get no gradient


def test_buffer_saturation_is_reported_and_truncates():
    inp = _rand_inputs()
    big = Network(8, [Dense(5, TAU_S, 0.1, n_max=40, init=Normal(3, 1))], seed=1)
    small = Network(8, [Dense(5, TAU_S, 0.1, n_max=3, init=Normal(3, 1))], seed=1)
    ob = big.forward(inp, 1.0)[0]
    os_ = small.forward(inp, 1.0)[0]
    assert (ob.counts > 3).all()
    assert (os_.counts == 3).all()
    assert small.saturation == [20]
    assert small.stats()[0]["saturated"] == 20 and small.stats()[0]["saturated_fraction"] == 1.0
    # later spikes never influence earlier ones: the truncated train is a prefix
    np.testing.assert_array_equal(os_.times, ob.times[:, :, :3])
    np.testing.assert_array_equal(small.udot[0], big.udot[0][:, :, :3])


def test_t_max_cut_keeps_exactly_the_earlier_spikes():
    inp = _rand_inputs(t_hi=0.8)
    net = Network(8, [Dense(5, TAU_S, 0.1, init=Normal(1.5, 1))], seed=2)
    full = net.forward(inp, 2.0)[0]
    for t_max in (0.2, 0.35, 0.5):
        cut = net.forward(inp, t_max)[0]
        keep = full.times <= t_max
        np.testing.assert_array_equal(cut.counts, keep.sum(axis=2))
        np.testing.assert_array_equal(np.where(keep, full.times, np.inf), cut.times)
        assert np.nanmax(np.where(np.isfinite(cut.times), cut.times, np.nan)) <= t_max


def test_negative_weight_delays_the_spike():
    times = np.array([[[0.0], [0.01]]])
    counts = np.array([[1, 1]], np.int32)
    t_exc, _, _ = _forward(times, counts, [[[10.0, 0.0]]], n_max=1)
    t_inh, _, _ = _forward(times, counts, [[[10.0, -2.0]]], n_max=1)
    t_none, c_none, _ = _forward(times, counts, [[[-10.0, 5.0]]], n_max=1)
    assert np.isfinite(t_exc[0, 0, 0]) and t_inh[0, 0, 0] > t_exc[0, 0, 0]
    assert c_none[0, 0] == 0


def test_simultaneous_inputs_act_together():
    """Coincident inputs are integrated together (docs/forward.md §6.2): same as one summed
    input."""
    times = np.array([[[0.05], [0.05], [0.05]]])
    counts = np.ones((1, 3), np.int32)
    t3, c3, _ = _forward(times, counts, [[[1.0, 1.5, 2.0]]])
    t1, c1, _ = _forward(times[:, :1], counts[:, :1], [[[4.5]]])
    assert c3[0, 0] == c1[0, 0] >= 1
    np.testing.assert_allclose(t3, t1, rtol=0, atol=1e-12)
    # deterministic: identical bits run to run
    again = _forward(times, counts, [[[1.0, 1.5, 2.0]]])
    np.testing.assert_array_equal(again[0], t3)


def test_spike_never_precedes_its_cause_and_ties_with_next_input():
    """A spike lies in (t_n, t_{n+1}]; an input at exactly a spike time is not part of it."""
    times = np.array([[[0.0], [0.3]]])
    counts = np.ones((1, 2), np.int32)
    t_a, _, _ = _forward(times, counts, [[[8.0, 0.0]]], n_max=1)
    t_spike = float(t_a[0, 0, 0])
    # second input exactly at the spike time: spike unchanged (input acts only after t)
    times2 = np.array([[[0.0], [t_spike]]])
    t_b, _, _ = _forward(times2, counts, [[[8.0, 100.0]]], n_max=2)
    assert t_b[0, 0, 0] == t_spike
    assert t_b[0, 0, 1] > t_spike  # the strong input then causes a second spike, later


@pytest.mark.parametrize("reset", [0.1, 0.2])
def test_long_simulation_float32_matches_float64(reset):
    """100 tau_s of activity in float32: no overflow, counts and times match float64.

    Neurons with a near-grazing spike (u_dot < 0.1 theta/tau) are excluded: there a float32
    rounding of the potential moves the crossing by ~ eps |u| / u_dot, and the shift carries to
    the neuron's later spikes through the reset.
    """
    rng = np.random.default_rng(3)
    t_max = 100 * 0.13
    # inputs and weights representable in float32, so only the engine's arithmetic differs
    times = np.sort(rng.uniform(0, t_max, (4, 20, 40)), axis=2).astype(np.float32)
    counts = np.full((4, 20), 40, np.int32)
    w = rng.normal(0.4, 0.8, (1, 12, 20)).astype(np.float32)
    group = np.zeros(4, np.int32)
    t64, c64, u64 = cpu.dense_forward(
        times.astype(np.float64), counts, w.astype(np.float64), group, 0.13, 0.1, reset, 200, t_max
    )
    t32, c32, u32 = cpu.dense_forward(times, counts, w, group, 0.13, 0.1, reset, 200, t_max)
    assert np.isfinite(t32[np.isfinite(t64)]).all() and not np.isnan(t32).any()
    tau = 0.26
    ok = (u64 > 0.1 * 0.1 / tau) | ~np.isfinite(t64)
    clean = ok.all(axis=2)  # neurons without near-grazing spikes
    assert clean.mean() > 0.8
    assert c64[clean].sum() > 1000 and t64[np.isfinite(t64)].max() > 0.9 * t_max - 1
    np.testing.assert_array_equal(c32[clean], c64[clean])
    fin = np.isfinite(t64) & clean[..., None]
    assert np.abs(t32[fin] - t64[fin]).max() <= 1e-5


def test_group_axis_equals_separate_runs():
    rng = np.random.default_rng(4)
    n_g, b_per = 3, 2
    times = np.sort(rng.uniform(0, 0.5, (n_g * b_per, 6, 3)), axis=2)
    counts = np.full((n_g * b_per, 6), 3, np.int32)
    group = np.array([2, 0, 1, 0, 2, 1], np.int32)
    w = rng.normal(1.5, 1.5, (n_g, 4, 6))
    tg, cg, ug = cpu.dense_forward(times, counts, w, group, TAU_S, 0.1, 0.2, 10, 1.0)
    phi = rng.normal(size=tg.shape)
    dg, gg, pg = cpu.dense_backward(times, counts, w, group, tg, cg, ug, phi, TAU_S, 0.2, True)
    assert gg.shape == (n_g, 4, 6) and cg.sum() > 0
    for g in range(n_g):
        idx = np.flatnonzero(group == g)
        one = np.zeros(idx.size, np.int32)
        t1, c1, u1 = cpu.dense_forward(
            times[idx], counts[idx], w[g : g + 1], one, TAU_S, 0.1, 0.2, 10, 1.0
        )
        np.testing.assert_array_equal(t1, tg[idx])
        np.testing.assert_array_equal(c1, cg[idx])
        d1, g1, p1 = cpu.dense_backward(
            times[idx], counts[idx], w[g : g + 1], one, t1, c1, u1, phi[idx], TAU_S, 0.2, True
        )
        np.testing.assert_allclose(g1[0], gg[g], rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(d1, dg[idx])
        np.testing.assert_allclose(p1, pg[idx], rtol=1e-12, atol=1e-12)


def test_backward_does_not_mutate_and_ignores_empty_slots():
    net = Network(8, [Dense(5, TAU_S, 0.1, n_max=10, init=Normal(1.5, 1.0))], seed=5)
    out = net.forward(_rand_inputs(), 1.0)[0]
    err = np.random.default_rng(0).normal(size=out.times.shape)
    g1 = net.backward(err.copy())
    junk = np.where(np.isfinite(out.times), err, 1e6)  # garbage in empty slots
    keep = junk.copy()
    g2 = net.backward(junk)
    np.testing.assert_array_equal(junk, keep)
    np.testing.assert_array_equal(g1[0], g2[0])


def test_forward_is_deterministic_and_stats_consistent():
    net = Network(8, [Dense(6, TAU_S, 0.1, init=Normal(1.5, 1.0)), Dense(3, TAU_S, 0.2)], seed=6)
    inp = _rand_inputs()
    a = net.forward(inp, 1.0)
    b = net.forward(inp, 1.0)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.times, y.times)
    st = net.stats()
    assert st[0]["spikes_per_sample"] == pytest.approx(a[0].counts.sum(axis=1).mean())
    assert st[0]["min_udot"] > 0 and st[0]["grazing"] == 0
    assert 0 <= st[1]["active_fraction"] <= 1


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_merge_order_is_time_then_neuron_then_slot(dtype):
    """Stable deterministic key (t, i, slot) (docs/forward.md §5), -0.0 sorts as 0.0."""
    times = np.array(
        [[[0.2, 0.5, np.inf], [-0.0, 0.2, 0.2], [0.1, 0.2, np.inf], [0.0, np.inf, np.inf]]],
        dtype=dtype,
    )
    counts = np.array([[2, 3, 2, 1]], np.int32)
    ev = cpu.merge_inputs(times, counts, 0.2)
    ev_t, ev_i, ev_s, ev_q, n_ev = ev.t, ev.i, ev.s, ev.q, ev.n
    assert n_ev[0] == 8
    assert list(zip(ev_i[0], ev_s[0], strict=True)) == [
        (1, 0),
        (3, 0),
        (2, 0),
        (0, 0),
        (1, 1),
        (1, 2),
        (2, 1),
        (0, 1),
    ]
    np.testing.assert_array_equal(
        np.abs(ev_t[0]), np.array([0, 0, 0.1, 0.2, 0.2, 0.2, 0.2, 0.5], dtype)
    )
    q = np.exp(-np.diff(ev_t[0].astype(float), prepend=0.0) / 0.2)
    np.testing.assert_allclose(ev_q[0], q, rtol=1e-6)
    # a train given out of neuron order merges identically when the same spikes move
    big = np.sort(np.random.default_rng(0).uniform(0, 1, (3, 50, 4)), axis=2).astype(dtype)
    c = np.full((3, 50), 4, np.int32)
    a = cpu.merge_inputs(big, c, 0.3)
    order = np.lexsort((np.tile(np.arange(4), 50), np.repeat(np.arange(50), 4), big[1].ravel()))
    np.testing.assert_array_equal(a.i[1], np.repeat(np.arange(50), 4)[order])
    # shared events give the same results as merging inside the kernels
    w = np.random.default_rng(1).normal(1.0, 1.0, (1, 6, 50)).astype(dtype)
    g = np.zeros(3, np.int32)
    own = cpu.dense_forward(big, c, w, g, 0.15, 0.1, 0.1, 10, 1.0)
    shared = cpu.dense_forward(big, c, w, g, 0.15, 0.1, 0.1, 10, 1.0, events=a)
    for x, y in zip(own, shared, strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="tau"):
        cpu.dense_forward(big, c, w, g, 0.2, 0.1, 0.1, 10, 1.0, events=a)
