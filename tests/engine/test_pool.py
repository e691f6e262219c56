"""Pool2D: spike aggregation, k x k windows, stride k (docs/conv-pool.md §3).

The output train is the sorted union of the window's trains (buffer k^2 K), each slot records
its source, errors go back unchanged to their sources, and inputs of a dropped odd edge (or of
no spike at all) get zero error.
"""

import numpy as np
import pytest
from batscope.engine import Dense, Network, Normal, Pool2D, SpikeTrains, cpu


def _trains(shape, batch, per_input, seed):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    times = np.sort(rng.uniform(0.0, 1.0, (batch, n, per_input)), axis=2)
    counts = rng.integers(0, per_input + 1, (batch, n)).astype(np.int32)
    times[np.arange(per_input)[None, None, :] >= counts[:, :, None]] = np.inf
    times[0, 0, 0] = times[0, 1, 0] = 0.25  # a tie inside a window
    counts[0, :2] = np.maximum(counts[0, :2], 1)
    times.sort(axis=2)
    return times, counts


def _window_union(times, counts, shape, k, b, r, c, ch):
    h, w, n_c = shape
    out = []
    for a in range(k):
        for d in range(k):
            i = ((r * k + a) * w + c * k + d) * n_c + ch
            out += [(times[b, i, z], i, z) for z in range(counts[b, i])]
    return sorted(out, key=lambda x: x[0])


@pytest.mark.parametrize("shape,k", [((5, 7, 3), 2), ((6, 6, 2), 3), ((4, 4, 1), 1)])
def test_pool_forward_is_the_sorted_union_of_each_window(shape, k):
    times, counts = _trains(shape, 3, 3, seed=k)
    t, c, src = cpu.pool_forward(times, counts, shape, k)
    h_o, w_o = shape[0] // k, shape[1] // k
    assert t.shape == (3, h_o * w_o * shape[2], k * k * 3) and src.shape == t.shape
    n_empty = 0
    for b in range(3):
        for r in range(h_o):
            for col in range(w_o):
                for ch in range(shape[2]):
                    j = (r * w_o + col) * shape[2] + ch
                    ref = _window_union(times, counts, shape, k, b, r, col, ch)
                    assert c[b, j] == len(ref)
                    n_empty += not ref
                    np.testing.assert_array_equal(t[b, j, : c[b, j]], [x[0] for x in ref])
                    assert np.isinf(t[b, j, c[b, j] :]).all() and (src[b, j, c[b, j] :] == -1).all()
                    s = src[b, j, : c[b, j]]
                    i, z = s // 3, s % 3
                    np.testing.assert_array_equal(times[b, i, z], t[b, j, : c[b, j]])
                    assert sorted(zip(i, z, strict=True)) == sorted((x[1], x[2]) for x in ref)
    if k == 3:
        assert n_empty == 0
    assert np.all(np.diff(np.where(np.isfinite(t), t, 2.0), axis=2) >= 0)


def test_pool_backward_routes_errors_to_sources_and_zero_elsewhere():
    shape = (5, 5, 2)  # 2x2 pooling drops row 4 and column 4
    times, counts = _trains(shape, 2, 2, seed=1)
    t, c, src = cpu.pool_forward(times, counts, shape, 2)
    phi = np.where(np.isfinite(t), np.random.default_rng(0).normal(size=t.shape), 0.0)
    phi_pre = cpu.pool_backward(phi, c, src, times.shape)
    ref = np.zeros(times.shape)
    for b, j, s in zip(*np.nonzero(np.isfinite(t)), strict=True):
        ref[b, src[b, j, s] // 2, src[b, j, s] % 2] = phi[b, j, s]
    np.testing.assert_array_equal(phi_pre, ref)
    grid = phi_pre.reshape(2, 5, 5, 2, 2)
    assert (grid[:, 4] == 0).all() and (grid[:, :, 4] == 0).all()  # the dropped edge
    assert np.isfinite(times.reshape(2, 5, 5, 2, 2)[:, 4]).any()  # ... did spike
    assert (phi_pre[~np.isfinite(times)] == 0).all()
    assert np.count_nonzero(phi_pre) == np.count_nonzero(phi)


def test_pool_then_dense_equals_dense_on_the_pooled_trains():
    shape = (6, 5, 2)
    times, counts = _trains(shape, 3, 2, seed=4)
    dense = Dense(4, 0.1, 0.1, reset=0.2, n_max=6, init=Normal(0.5, 0.5))
    net = Network(input_shape=shape, layers=[Pool2D(2), dense], seed=0)
    out = net.forward(SpikeTrains(times, counts), 1.0)
    ref = Network(net.sizes[1], [dense], seed=0)
    ref.weights = net.weights
    out_ref = ref.forward(out[0], 1.0)
    np.testing.assert_array_equal(out[1].times, out_ref[0].times)
    assert out[1].n_spikes > 5
    phi = np.where(np.isfinite(out[1].times), 1.0, 0.0)
    g = net.backward(phi, input_errors=True)
    g_ref = ref.backward(phi, input_errors=True)
    assert len(g) == 1 and net.error_components[0].mu.max() == 0
    np.testing.assert_array_equal(g[0], g_ref[0])
    np.testing.assert_array_equal(net.error_components[0].delta, ref.input_errors)
    assert net.stats()[0]["saturated"] == 0 and np.isnan(net.stats()[0]["min_udot"])
