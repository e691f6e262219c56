"""Memory estimates: byte-size parsing, and the estimate against the peak NumPy really allocates.

NumPy reports its allocations to ``tracemalloc``, so the traced peak of a few real CPU training
steps is the memory the estimate must bound. The estimate assumes full spike buffers, so the
networks here saturate them (low threshold, positive weights) and the estimate must stay within
0.8x - 2x of the measured peak; a sparse network only needs to stay under it.
"""

import tracemalloc

import numpy as np
import pytest
from batscope.engine import Adam, Conv2D, Dense, Network, Pool2D, SpikeTrains, Uniform
from batscope.engine.convergence import SweepConfig, run_sweep
from batscope.engine.memory import (
    LayerFootprint,
    MemoryEstimate,
    estimate_network_memory,
    estimate_sweep_memory,
    format_bytes,
    layer_footprint,
    parse_bytes,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (0, 0),
        (12345, 12345),
        ("12345", 12345),
        ("512B", 512),
        ("2GB", 2 * 10**9),
        ("2 gb", 2 * 10**9),
        ("1.5 GiB", 3 * 2**29),
        ("512MB", 512 * 10**6),
        ("800M", 800 * 10**6),
        ("64 MiB", 64 * 2**20),
        ("1.5k", 1500),
        ("0.5 TB", 5 * 10**11),
        (" 3 KiB ", 3072),
        ("1.0000000001 B", 1),  # rounded down to whole bytes
    ],
)
def test_parse_bytes_accepts_numbers_and_units(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    "text", ["", "GB", "-1", "-2GB", "nan", "NaN GB", "inf", "1e9", "2 GBs", "2 XB", "1.2.3 MB"]
)
def test_parse_bytes_refuses_garbage_with_a_clear_message(text):
    with pytest.raises(ValueError, match="byte size|unit"):
        parse_bytes(text)


@pytest.mark.parametrize("value", [-1, True, 1.5, None, b"2GB"])
def test_parse_bytes_refuses_other_types_and_negative_ints(value):
    with pytest.raises((TypeError, ValueError)):
        parse_bytes(value)


def test_format_bytes():
    assert format_bytes(0) == "0 B"
    assert format_bytes(999) == "999 B"
    assert format_bytes(1000) == "1.0 kB"
    assert format_bytes(1_234_000_000) == "1.2 GB"
    assert format_bytes(350 * 10**6) == "350 MB"
    assert format_bytes(15 * 10**12) == "15.0 TB"
    assert parse_bytes(format_bytes(2 * 10**9)) == 2 * 10**9
    with pytest.raises(ValueError):
        format_bytes(-1)


def _saturating(n, n_max):
    return Dense(n, tau_s=0.05, theta=0.05, n_max=n_max, init=Uniform(0.5, 1.0))


def _measured_training_peak(n_inputs, layers, batch, dtype, input_slots=1, steps=2):
    """Traced peak bytes of ``steps`` training steps after a warm-up step (compiled kernels,
    Adam's moments created), with the inputs allocated beforehand. ``n_inputs``: an int or an
    input shape (H, W, C)."""
    if isinstance(n_inputs, tuple):
        net = Network(input_shape=n_inputs, layers=layers, dtype=dtype, seed=0)
        n_inputs = net.n_inputs
    else:
        net = Network(n_inputs, layers, dtype=dtype, seed=0)
    opt = Adam(1e-3)
    rng = np.random.default_rng(0)
    inputs = [
        SpikeTrains.from_arrays(
            np.sort(rng.uniform(0, 0.05, (batch, n_inputs, input_slots)), axis=2).astype(dtype)
        )
        for _ in range(steps + 1)
    ]

    def step(inp):
        out = net.forward(inp, 0.3)
        errors = np.where(np.isfinite(out[-1].times), 1.0, 0.0).astype(dtype)
        grads = [g / batch for g in net.backward(errors)]
        weights = net.weights
        opt.step(weights, grads)
        net.weights = weights
        return out

    step(inputs.pop())
    tracemalloc.start()
    try:
        for inp in inputs:
            out = step(inp)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    saturation = [
        float((o.counts == layer.n_max).mean())
        for o, layer in zip(out, layers, strict=True)
        if not isinstance(layer, Pool2D)
    ]
    return peak, saturation


@pytest.mark.parametrize(
    "n_inputs, layers, batch, dtype, input_slots",
    [
        (50, [_saturating(40, 8), _saturating(10, 8)], 16, "float32", 1),
        (50, [_saturating(40, 8), _saturating(10, 8)], 64, "float64", 2),
        (200, [_saturating(150, 5)], 32, "float32", 1),
    ],
)
def test_estimate_is_within_a_factor_of_two_of_the_measured_peak(
    n_inputs, layers, batch, dtype, input_slots
):
    peak, saturation = _measured_training_peak(n_inputs, layers, batch, dtype, input_slots)
    assert min(saturation) > 0.9  # the regime the estimate describes
    est = estimate_network_memory(n_inputs, layers, batch, dtype, input_slots=input_slots)
    assert peak <= est.total <= 2 * peak, (peak, est.describe())


def _saturating_conv(channels, k, n_max):
    return Conv2D(channels, k, tau_s=0.05, theta=0.05, n_max=n_max, init=Uniform(0.5, 1.0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv_pool_estimate_is_within_a_factor_of_two_of_the_measured_peak(dtype):
    layers = [_saturating_conv(4, 3, 4), Pool2D(2), _saturating_conv(3, 2, 4), _saturating(6, 4)]
    peak, saturation = _measured_training_peak((10, 10, 1), layers, 8, dtype)
    assert min(saturation) > 0.9
    est = estimate_network_memory((10, 10, 1), layers, 8, dtype)
    assert peak <= est.total <= 2 * peak, (peak, est.describe())


def test_estimate_bounds_a_sparse_network():
    layers = [Dense(60, 0.13, 0.2, n_max=30), Dense(10, 0.13, 1.3, n_max=30)]
    peak, _ = _measured_training_peak(784, layers, 20, "float32")
    est = estimate_network_memory(784, layers, 20, "float32")
    assert peak <= est.total <= 3 * peak, (peak, est.describe())


def test_sweep_estimate_is_within_a_factor_of_two_of_the_measured_peak():
    cfg = SweepConfig(means=(0.5, 1.0, 1.5), stds=(0.0, 0.5), repeats=50, epochs=3)
    run_sweep(SweepConfig(means=(1.0,), stds=(0.0,), repeats=1, epochs=1))  # compile
    tracemalloc.start()
    try:
        run_sweep(cfg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    est = estimate_sweep_memory(cfg)
    assert peak <= est.total <= 2 * peak, (peak, est.describe())
    assert estimate_sweep_memory(cfg, chunk_cells=1).total < est.total


def test_estimate_grows_with_batch_size_slots_and_dtype():
    def total(batch=50, n=800, n_max=30, dtype="float32", **kw):
        layers = [Dense(n, 0.1, 0.1, n_max=n_max), Dense(10, 0.1, 1.0, n_max=n_max)]
        return estimate_network_memory(784, layers, batch, dtype, **kw).total

    base = total()
    assert total(batch=100) > base and total(n=1600) > base and total(n_max=60) > base
    assert total(dtype="float64") > base and total(input_slots=3) > base
    assert total(training=False) < base
    assert total(optimizer="sgd") < base
    # the 66 GB layer: batch x neurons x buffer x 8 bytes, reported as such
    big = estimate_network_memory(784, [Dense(100_000, 0.1, 0.1, n_max=1000)], 100, "float64")
    assert big.total > 66e9 and "GB" in big.describe()


def test_estimate_parts_sum_and_describe():
    est = estimate_network_memory(10, [Dense(5, 0.1, 0.1)], 4)
    assert isinstance(est, MemoryEstimate) and est.total == sum(est.parts.values())
    text = est.describe()
    assert text.startswith(f"about {format_bytes(est.total)}") and "spike buffers" in text


def test_estimate_refuses_bad_arguments():
    layers = [Dense(5, 0.1, 0.1)]
    with pytest.raises(ValueError, match="batch"):
        estimate_network_memory(10, layers, 0)
    with pytest.raises(TypeError, match="n_inputs"):
        estimate_network_memory(10.0, layers, 4)
    with pytest.raises(ValueError, match="optimizer"):
        estimate_network_memory(10, layers, 4, optimizer="rmsprop")
    with pytest.raises(ValueError, match="dtype"):
        estimate_network_memory(10, layers, 4, dtype="float16")
    with pytest.raises(TypeError, match="no memory footprint"):
        estimate_network_memory(10, [object()], 4)
    with pytest.raises(TypeError, match="SweepConfig"):
        estimate_sweep_memory({"repeats": 3})


def test_layer_footprint_of_a_dense_layer():
    fp = layer_footprint(Dense(7, 0.1, 0.1, n_max=3), 5)
    assert isinstance(fp, LayerFootprint) and (fp.neurons, fp.slots, fp.weights) == (7, 3, 35)


def test_layer_footprints_of_conv_and_pool_layers():
    conv = layer_footprint(Conv2D(15, 5, 0.13, 0.04, n_max=1), (28, 28, 1))
    assert (conv.neurons, conv.slots, conv.weights) == (24 * 24 * 15, 1, 15 * 25)
    pool = layer_footprint(Pool2D(2), (24, 24, 15), in_slots=3)
    assert (pool.neurons, pool.slots, pool.weights) == (12 * 12 * 15, 12, 0)
    # the pool's buffers: times and source slots per slot, counts per neuron (float32)
    assert pool.spikes == 12 * 12 * 15 * (12 * 8 + 4)
