"""engine/analysis.py: binning, sparsity, latency and error-flow sums on hand-built spikes."""

import numpy as np
import pytest
from batscope.engine.analysis import (
    LatencyCurve,
    bin_raster,
    channel_image,
    confidence,
    decimate_minmax,
    error_share,
    error_sums,
    first_time_at,
    kernel_tiles,
    latency_curve,
    layer_sparsity,
    spike_events,
)

INF = np.inf


def test_bin_raster_sums_equal_spike_counts():
    rng = np.random.default_rng(0)
    n, k = 50, 7
    counts = rng.integers(0, k + 1, n).astype(np.int32)
    times = np.sort(rng.uniform(0, 0.5, (n, k)), axis=1)
    times[np.arange(k) >= counts[:, None]] = INF
    t, binned = bin_raster(times, counts, t_max=0.5, n_bins=20)
    assert binned.shape == (n, 20) and t.shape == (20,)
    np.testing.assert_array_equal(binned.sum(axis=1), counts)
    np.testing.assert_allclose(t[[0, -1]], [0.0125, 0.4875])


def test_bin_raster_edges_and_out_of_range():
    times = np.array([[0.0, 1.0, 1.5], [0.25, INF, INF]])
    counts = np.array([3, 1], np.int32)  # 1.5 > t_max is left out, 1.0 goes to the last bin
    _, binned = bin_raster(times, counts, t_max=1.0, n_bins=4)
    np.testing.assert_array_equal(binned, [[1, 0, 0, 1], [0, 1, 0, 0]])


def test_bin_raster_weights_sum_delta_and_skip_nan():
    times = np.array([[0.1, 0.2], [0.6, INF]])
    counts = np.array([2, 1], np.int32)
    delta = np.array([[0.5, -2.0], [np.nan, 9.0]])  # slot [1,1] is empty, [1,0] is NaN
    _, binned = bin_raster(times, counts, 1.0, 2, weights=delta)
    np.testing.assert_allclose(binned, [[-1.5, 0.0], [0.0, 0.0]])


def test_bin_raster_validates():
    with pytest.raises(ValueError, match="n_bins"):
        bin_raster(np.zeros((2, 1)), np.zeros(2, np.int32), 1.0, 0)
    with pytest.raises(ValueError, match="t_max"):
        bin_raster(np.zeros((2, 1)), np.zeros(2, np.int32), 0.0, 3)
    with pytest.raises(ValueError, match="counts"):
        bin_raster(np.zeros((2, 1)), np.zeros(3, np.int32), 1.0, 3)


def test_spike_events_lists_emitted_only():
    times = np.array([[0.3, INF], [0.1, 0.2]])
    neuron, slot, t = spike_events(times, np.array([1, 2], np.int32))
    np.testing.assert_array_equal(neuron, [0, 1, 1])
    np.testing.assert_array_equal(slot, [0, 0, 1])
    np.testing.assert_allclose(t, [0.3, 0.1, 0.2])


def test_layer_sparsity_definitions():
    counts = np.array([[0, 2, 3, 0], [0, 0, 3, 1]], np.int32)  # B=2, N=4, n_max=3
    s = layer_sparsity("hidden", counts, n_max=3)
    assert s.name == "hidden"
    assert s.spikes_per_sample == pytest.approx((5 + 4) / 2)
    assert s.active_fraction == pytest.approx((2 / 4 + 2 / 4) / 2)
    assert s.dead_fraction == pytest.approx(1 / 4)  # neuron 0 never fires
    assert s.saturated_fraction == pytest.approx(2 / 8)
    np.testing.assert_allclose(s.spikes_per_neuron, [0, 1, 3, 0.5])
    with pytest.raises(ValueError, match="n_max"):
        layer_sparsity("h", counts, 0)
    with pytest.raises(ValueError, match="counts"):
        layer_sparsity("h", np.zeros((0, 4), np.int32), 3)


def _outputs():
    """3 samples, 2 output neurons, 2 slots."""
    times = np.array(
        [
            [[0.05, 0.06], [0.02, INF]],  # counts 2 vs 1; first spikes 0.05 vs 0.02
            [[0.03, INF], [0.03, INF]],  # tie in both modes
            [[INF, INF], [INF, INF]],  # silent
        ]
    )
    counts = np.array([[2, 1], [1, 1], [0, 0]], np.int32)
    return times, counts


def test_latency_count_mode():
    times, counts = _outputs()
    labels = np.array([0, 0, 0])
    grid = [0.01, 0.025, 0.055, 0.1]
    strict = latency_curve(times, counts, labels, grid, mode="count", tie_mode="strict")
    # T=0.025: sample0 has only neuron1's spike -> 1 (wrong); T=0.055: 1 vs 1 tie -> wrong
    np.testing.assert_allclose(strict.accuracy, [0, 0, 0, 1 / 3])
    ref = latency_curve(times, counts, labels, grid, mode="count", tie_mode="reference")
    # reference: a tie -> lowest index 0 (right for samples 0, 1); silence stays wrong
    np.testing.assert_allclose(ref.accuracy, [0, 0, 2 / 3, 2 / 3])
    assert isinstance(ref, LatencyCurve) and ref.t_enc == 0.1


def test_latency_ttfs_mode():
    times, counts = _outputs()
    labels = np.array([1, 0, 1])
    grid = [0.01, 0.025, 0.04]
    strict = latency_curve(times, counts, labels, grid, mode="ttfs", tie_mode="strict", label="T")
    np.testing.assert_allclose(strict.accuracy, [0, 1 / 3, 1 / 3])
    ref = latency_curve(times, counts, labels, grid, mode="ttfs", tie_mode="reference")
    np.testing.assert_allclose(ref.accuracy, [0, 1 / 3, 2 / 3])
    assert strict.label == "T"


def test_latency_validates():
    times, counts = _outputs()
    with pytest.raises(ValueError, match="mode"):
        latency_curve(times, counts, np.zeros(3, int), [0.1], mode="rate")
    with pytest.raises(ValueError, match="tie_mode"):
        latency_curve(times, counts, np.zeros(3, int), [0.1], tie_mode="x")
    with pytest.raises(ValueError, match="labels"):
        latency_curve(times, counts, np.zeros(2, int), [0.1])


def test_confidence_and_first_time():
    c = LatencyCurve(t=np.array([0.0, 0.05, 0.1]), accuracy=np.array([0.0, 0.9, 0.9]), t_enc=0.1)
    np.testing.assert_allclose(confidence(c), [0, 1, 1])
    assert first_time_at(c.t, confidence(c), 1.0) == pytest.approx(0.05)
    zero = LatencyCurve(t=np.array([0.0]), accuracy=np.array([0.0]), t_enc=0.1)
    assert np.isnan(confidence(zero)).all()
    assert np.isnan(first_time_at([0.0], [0.5], 1.0))


def test_error_sums_and_share():
    phi = np.array([[1.0, -2.0], [0.5, 7.0]])
    mu = np.array([[-1.0, 0.0], [0.0, 7.0]])
    counts = np.array([2, 1])  # slot [1,1] is empty and ignored
    s = error_sums(phi, mu, counts)
    np.testing.assert_allclose(s.phi, [-1.0, 0.5])
    np.testing.assert_allclose(s.mu, [-1.0, 0.0])
    np.testing.assert_allclose(s.abs_phi, [3.0, 0.5])
    assert error_share(phi, mu, counts) == pytest.approx(1.0 / 4.5)
    assert error_share(phi, np.zeros_like(mu), counts) == 0.0  # single-spike: no reset path
    assert np.isnan(error_share(np.zeros((1, 1)), np.zeros((1, 1))))


def test_decimate_minmax_keeps_extremes():
    t = np.linspace(0, 1, 10_001)
    u = np.sin(40 * t)[None, :]
    u[0, 5000] = -5.0  # a reset-like drop must survive
    td, ud = decimate_minmax(t, u, 400)
    assert td.size <= 800 and ud.shape == (1, td.size)
    assert ud.min() == -5.0 and ud.max() == pytest.approx(u.max())
    same_t, same_u = decimate_minmax(t[:10], u[:, :10], 400)
    assert same_t.size == 10


def test_channel_image_reads_the_channels_last_order():
    # shape (H, W, C) = (2, 3, 2): neuron (row·3 + col)·2 + c
    counts = np.array([0, 1, 2, 0, 1, 1, 0, 0, 3, 1, 1, 0], dtype=np.int32)
    times = np.full((12, 3), INF)
    for j, n in enumerate(counts):
        times[j, :n] = 0.01 * j + 0.001 * np.arange(n)
    np.testing.assert_array_equal(
        channel_image(times, counts, (2, 3, 2), 0, "spike count"), [[0, 2, 1], [0, 3, 1]]
    )
    np.testing.assert_array_equal(
        channel_image(times, counts, (2, 3, 2), 1, "spike count"), [[1, 0, 1], [0, 1, 0]]
    )
    first = channel_image(times, counts, (2, 3, 2), 1, "first spike")
    np.testing.assert_array_equal(first, [[0.01, np.nan, 0.05], [np.nan, 0.09, np.nan]])
    with pytest.raises(ValueError, match=r"channel must be in \[0, 2\)"):
        channel_image(times, counts, (2, 3, 2), 2, "spike count")
    with pytest.raises(ValueError, match="shape .* holds 6"):
        channel_image(times, counts, (1, 3, 2), 0, "spike count")
    with pytest.raises(ValueError, match="quantity must be one of"):
        channel_image(times, counts, (2, 3, 2), 0, "rate")


def test_kernel_tiles_place_each_kernel_beside_the_next():
    w = np.arange(2 * 3 * 3 * 2, dtype=float).reshape(2, 3, 3, 2)  # (C_out, k, k, C_in)
    tiles = kernel_tiles(w, 1)
    assert tiles.shape == (3, 7)
    np.testing.assert_array_equal(tiles[:, :3], w[0, :, :, 1])
    np.testing.assert_array_equal(tiles[:, 4:], w[1, :, :, 1])
    assert np.isnan(tiles[:, 3]).all()
    with pytest.raises(ValueError, match=r"in_channel must be in \[0, 2\)"):
        kernel_tiles(w, 2)
    with pytest.raises(ValueError, match="C_out, k, k, C_in"):
        kernel_tiles(w[0], 0)
