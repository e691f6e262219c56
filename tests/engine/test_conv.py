"""Conv2D: exact forward and backward (docs/conv-pool.md §2).

Forward spike times equal two independent evaluations: a dense layer with the equivalent masked
weight matrix (the conv layer's receptive-field input lists must give the same neurons), and the
project's root-finder (srm_reference). Gradients of small conv / pool / dense nets equal central
finite differences of the linear probe L = sum r t (docs/backward.md §8 protocol, float64).
"""

import json

import numpy as np
import pytest
from batscope.engine import Conv2D, Dense, Network, Normal, Pool2D, SpikeTrains, cpu
from fd_probe import fd_check
from srm_reference import reference_spikes

TOL = 1e-6


def _image_inputs(shape, batch, per_input, seed, t_hi=0.5, silent=0.3):
    """[B, H W C, per_input] sorted times; a fraction of the neurons silent, some spike less."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    times = np.sort(rng.uniform(0.0, t_hi, (batch, n, per_input)), axis=2)
    times[rng.random((batch, n)) < silent] = np.inf
    short = rng.random((batch, n)) < 0.3
    times[short, -1] = np.inf
    return times


def _conv_case(seed, shape=(7, 6, 2), c_out=3, k=3, batch=3, per_input=3, dtype=np.float64):
    rng = np.random.default_rng(seed)
    times = _image_inputs(shape, batch, per_input, seed)
    counts = np.isfinite(times).sum(axis=2).astype(np.int32)
    w = rng.normal(0.2, 0.8, (1, c_out, k, k, shape[2]))
    return times.astype(dtype), counts, w.astype(dtype)


def _masked_dense(w, shape):
    layer = Conv2D(w.shape[1], w.shape[2], 0.1, 0.1, n_max=1)
    n_out = int(np.prod(layer.output_shape(shape)))
    return layer.dense_rows(w[0], shape, np.arange(n_out))[None]


@pytest.mark.parametrize("theta,reset", [(0.1, 0.1), (0.15, 0.3)])
def test_conv_forward_equals_masked_dense_layer(theta, reset):
    shape = (7, 6, 2)
    times, counts, w = _conv_case(1, shape)
    group = np.zeros(times.shape[0], np.int32)
    args = (0.1, theta, reset, 12, 1.0)
    t, c, ud = cpu.conv_forward(times, counts, w, group, shape, *args)
    td, cd, udd = cpu.dense_forward(times, counts, _masked_dense(w, shape), group, *args)
    assert t.shape == (3, 5 * 4 * 3, 12)
    np.testing.assert_array_equal(c, cd)
    assert c.sum() > 250 and (c >= 3).sum() > 20 and (c == 0).sum() > 0
    np.testing.assert_allclose(t, td, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ud, udd, rtol=1e-9, atol=1e-12)
    # float32: within the float32 engine's accuracy of the float64 result
    t32, c32, _ = cpu.conv_forward(
        times.astype(np.float32), counts, w.astype(np.float32), group, shape, *args
    )
    same = (c32 == c).all(axis=-1) if c.ndim > 2 else c32 == c
    assert same.mean() > 0.98
    fin = np.isfinite(t) & same[:, :, None]
    np.testing.assert_allclose(t32[fin], t[fin], rtol=0, atol=1e-5)


def test_conv_forward_matches_the_root_finder():
    shape = (6, 6, 2)
    times, counts, w = _conv_case(2, shape, c_out=2)
    group = np.zeros(times.shape[0], np.int32)
    t, c, ud = cpu.conv_forward(times, counts, w, group, shape, 0.1, 0.1, 0.2, 10, 1.0)
    rows = _masked_dense(w, shape)[0]
    checked = 0
    for b in range(times.shape[0]):
        for j in range(0, c.shape[1], 3):
            fin = np.isfinite(times[b])
            in_t = times[b][fin]
            in_w = np.repeat(rows[j][:, None], times.shape[2], axis=1)[fin]
            keep = in_w != 0
            ref, ambiguous = reference_spikes(in_t[keep], in_w[keep], 0.1, 0.1, 0.2, 1.0, 10)
            n = c[b, j]
            if ambiguous or (n and ud[b, j, :n].min() < 1e-2 * 0.1 / 0.2):
                continue
            assert n == ref.size, (b, j)
            np.testing.assert_allclose(t[b, j, :n], ref, rtol=0, atol=1e-9)
            checked += 1
    assert checked >= 30


def test_conv_group_axis_equals_separate_runs():
    shape = (5, 5, 1)
    times, counts, w = _conv_case(3, shape, c_out=2, batch=4)
    w2 = np.concatenate([w, w[:, :, ::-1] * 0.7])
    group = np.array([1, 0, 1, 1], np.int32)
    args = (0.1, 0.1, 0.1, 8, 1.0)
    t, c, ud = cpu.conv_forward(times, counts, w2, group, shape, *args)
    phi = np.where(np.isfinite(t), np.random.default_rng(0).normal(size=t.shape), 0.0)
    delta, grad, phi_pre = cpu.conv_backward(
        times, counts, w2, group, shape, t, c, ud, phi, 0.1, 0.1, True
    )
    for g in (0, 1):
        sel = group == g
        z = np.zeros(sel.sum(), np.int32)
        tg, cg, ug = cpu.conv_forward(times[sel], counts[sel], w2[g : g + 1], z, shape, *args)
        np.testing.assert_array_equal(tg, t[sel])
        dg, gg, pg = cpu.conv_backward(
            times[sel], counts[sel], w2[g : g + 1], z, shape, tg, cg, ug, phi[sel], 0.1, 0.1, True
        )
        np.testing.assert_array_equal(dg, delta[sel])
        np.testing.assert_allclose(gg[0], grad[g], rtol=1e-13, atol=1e-13)
        np.testing.assert_array_equal(pg, phi_pre[sel])


def test_empty_receptive_fields_stay_silent():
    shape = (6, 6, 1)
    times = np.full((2, 36, 1), np.inf)
    times[0, [0, 1, 6, 7], 0] = [0.1, 0.12, 0.11, 0.13]  # only the top-left corner spikes
    counts = np.isfinite(times).sum(axis=2).astype(np.int32)
    w = np.full((1, 1, 2, 2, 1), 2.0)
    t, c, _ = cpu.conv_forward(
        times, counts, w, np.zeros(2, np.int32), shape, 0.1, 0.1, 0.1, 3, 1.0
    )
    assert c[1].sum() == 0 and np.isinf(t[1]).all()  # a sample without input
    seen = np.zeros(25, bool)
    seen[[0, 1, 5, 6]] = True  # the output positions whose 2x2 field holds a spiking pixel
    assert c[0, 0] > 0 and c[0, ~seen].sum() == 0


@pytest.mark.parametrize(
    "case",
    ["conv-pool-dense", "conv-conv-oddpool-dense", "conv-saturated"],
)
def test_conv_gradients_equal_finite_differences(case):
    if case == "conv-pool-dense":
        shape = (6, 6, 1)
        layers = [
            Conv2D(2, 3, 0.1, 0.1, n_max=5, reset=0.2, init=Normal(0.6, 0.5)),
            Pool2D(2),
            Dense(3, 0.1, 0.1, reset=0.2, n_max=8, init=Normal(0.3, 0.3)),
        ]
    elif case == "conv-conv-oddpool-dense":
        shape = (5, 5, 2)
        layers = [
            Conv2D(3, 2, 0.1, 0.1, n_max=4, init=Normal(0.5, 0.5)),
            Conv2D(2, 2, 0.1, 0.1, n_max=6, reset=0.2, init=Normal(0.3, 0.4)),
            Pool2D(2),  # 3x3 -> 1x1: the last row and column are dropped
            Dense(2, 0.1, 0.1, n_max=8, init=Normal(0.5, 0.4)),
        ]
    else:
        shape = (4, 4, 2)
        layers = [Conv2D(3, 3, 0.1, 0.1, n_max=2, init=Normal(1.5, 1.0))]
    net = Network(input_shape=shape, layers=layers, seed=5)
    times = _image_inputs(shape, 2, 3, seed=4, silent=0.2)
    worst_w, n_w, _, worst_t, n_t, grads, comps = fd_check(net, times, 1.0)
    n_weights = sum(w.size for w in net.weights)
    assert n_w >= 0.7 * n_weights and n_t >= 0.7 * np.isfinite(times).sum(), (n_w, n_t)
    assert worst_w <= TOL and worst_t <= TOL, (worst_w, worst_t)
    assert all(np.abs(g).max() > 0 for g in grads)
    conv_comps = [c for c, la in zip(comps, net.layers, strict=True) if isinstance(la, Conv2D)]
    assert all(np.abs(c.delta).max() > 0 for c in conv_comps)
    if case == "conv-saturated":
        assert net.saturation[0] > 0
    if case == "conv-conv-oddpool-dense":
        # conv2's neurons in the dropped last row / column get zero error
        phi = comps[1].phi.reshape(2, 3, 3, 2, -1)
        assert (phi[:, 2] == 0).all() and (phi[:, :, 2] == 0).all()
        assert np.abs(phi[:, 0, 0]).max() > 0


def test_conv_float32_gradients_close_to_float64():
    shape = (8, 8, 1)
    layers = [
        Conv2D(4, 3, 0.1, 0.1, n_max=4, init=Normal(0.5, 0.4)),
        Pool2D(2),
        Dense(3, 0.1, 0.3, n_max=6, init=Normal(0.2, 0.2)),
    ]
    times = _image_inputs(shape, 4, 2, seed=8)
    res = {}
    for dt in ("float64", "float32"):
        net = Network(input_shape=shape, layers=layers, seed=2, dtype=dt)
        net.weights = [
            w.astype(dt) for w in Network(input_shape=shape, layers=layers, seed=2).weights
        ]
        out = net.forward(SpikeTrains.from_arrays(times.astype(dt)), 1.0)
        r = np.random.default_rng(0).normal(size=out[-1].times.shape)
        res[dt] = ([o.counts for o in out], net.backward(r, input_errors=True), net.input_errors)
    for a, b in zip(res["float64"][0], res["float32"][0], strict=True):
        np.testing.assert_array_equal(a, b)
    for g64, g32 in zip(res["float64"][1], res["float32"][1], strict=True):
        scale = np.abs(g64).max()
        assert scale > 0
        np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * scale)
    scale = np.abs(res["float64"][2]).max()
    np.testing.assert_allclose(res["float32"][2], res["float64"][2], rtol=0, atol=2e-5 * scale)


def test_conv_network_shapes_weights_membrane_and_save(tmp_path):
    net = Network(
        input_shape=(10, 9, 1),
        layers=[
            Conv2D(3, 3, 0.1, 0.1, n_max=4, init=Normal(0.7, 0.4)),
            Pool2D(2),
            Dense(4, 0.1, 0.2, n_max=5),
        ],
        seed=1,
    )
    assert net.shapes == [(10, 9, 1), (8, 7, 3), (4, 3, 3), (4,)]
    assert net.sizes == [90, 168, 36, 4]
    assert [w.shape for w in net.weights] == [(3, 3, 3, 1), (4, 36)]
    times = _image_inputs((10, 9, 1), 2, 1, seed=3, silent=0.1)
    out = net.forward(SpikeTrains.from_arrays(times), 1.0)
    assert out[1].n_slots == 16 and net.stats()[1]["saturated"] == 0
    # the exact membrane of a conv neuron reaches theta at each of its spikes
    j = int(np.argmax(out[0].counts[0]))
    n = out[0].counts[0, j]
    assert n > 0
    ts = out[0].times[0, j, :n]
    u = net.membrane(ts, sample=0, layer=0, neurons=[j])
    np.testing.assert_allclose(u[0], 0.1, atol=1e-10)
    with pytest.raises(ValueError, match="no membrane"):
        net.membrane(ts, layer=1)
    net.save(tmp_path / "m")
    back = Network.load(tmp_path / "m")
    assert back.layers == net.layers and back.shapes == net.shapes
    for a, b in zip(back.weights, net.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"layers\[1\].*exceeds"):
        Network(
            input_shape=(4, 4, 1), layers=[Conv2D(2, 3, 0.1, 0.1, 2), Conv2D(2, 3, 0.1, 0.1, 2)]
        )
    with pytest.raises(ValueError, match="needs an \\(H, W, C\\) input"):
        Network(6, [Conv2D(2, 3, 0.1, 0.1, 2)])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"input_shape": [10, 9, 2]}, "does not hold n_inputs"),
        ({"input_shape": [10, 9]}, r"input_shape must be a list \[H, W, C\]"),
        (
            {"layers": [{"kind": "conv2d", "channels": 3, "kernel_size": 11}]},
            r"layers\[0\]: Conv2D",
        ),
        ({"layers": [{"kind": "pool2d", "size": 0}]}, r"layers\[0\].size must be an integer"),
        ({"layers": [{"kind": "conv3d"}]}, r"layers\[0\].kind must be"),
    ],
)
def test_conv_model_files_are_checked_before_building(tmp_path, change, message):
    net = Network(input_shape=(10, 9, 1), layers=[Conv2D(3, 3, 0.1, 0.1, 4), Pool2D(2)])
    net.save(tmp_path / "m")
    cfg = json.loads((tmp_path / "m.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps(cfg | change))
    with pytest.raises(ValueError, match=message):
        Network.load(tmp_path / "m")
    net.save(tmp_path / "n")  # the conv kernels' 3 x 3 x 3 x 1 weights are counted
    with pytest.raises(ValueError, match="27 weights, more than max_weights=10"):
        Network.load(tmp_path / "n", max_weights=10)


def test_field_lists_must_come_from_the_same_inputs():
    shape = (6, 6, 2)
    times, counts, w = _conv_case(5, shape, c_out=2)
    group = np.zeros(times.shape[0], np.int32)
    args = (shape, 0.1, 0.1, 0.1, 4, 1.0)
    ev = cpu.merge_receptive_fields(times, counts, shape, 3, 0.2)
    shared = cpu.conv_forward(times, counts, w, group, *args, events=ev)
    for a, b in zip(shared, cpu.conv_forward(times, counts, w, group, *args), strict=True):
        np.testing.assert_array_equal(a, b)
    other_t, other_c, _ = _conv_case(6, shape, c_out=2)
    other = cpu.merge_receptive_fields(other_t, other_c, shape, 3, 0.2)
    with pytest.raises(ValueError, match="other inputs"):
        cpu.conv_forward(times, counts, w, group, *args, events=other)
    with pytest.raises(ValueError, match="another layer"):
        cpu.conv_forward(times, counts, w, group, *args, events=ev._replace(tau=0.3))
    with pytest.raises(TypeError, match="FieldEvents"):
        cpu.conv_forward(times, counts, w, group, *args, events=(1, 2))
    # right counts, but a weight row or a presynaptic slot out of range in one list's [:n]
    b, pos = np.argwhere(ev.n > 0)[-1]
    last = ev.n[b, pos] - 1
    for name, bad in (("row", 3 * 3 * 2), ("row", -1), ("src", times.shape[1] * 3), ("src", -1)):
        arr = getattr(ev, name).copy()
        arr[b, pos, last] = bad
        with pytest.raises(ValueError, match="other inputs"):
            cpu.conv_backward(
                times, counts, w, group, shape, *shared, np.zeros_like(shared[0]), 0.1, 0.1, True,
                events=ev._replace(**{name: arr}),
            )  # fmt: skip
    # entries past n are never read: garbage there is accepted
    past = np.arange(ev.row.shape[2]) >= ev.n[..., None]
    assert past.any()
    row = np.where(past, -7, ev.row).astype(np.int32)
    again = cpu.conv_forward(times, counts, w, group, *args, events=ev._replace(row=row))
    for a, b in zip(shared, again, strict=True):
        np.testing.assert_array_equal(a, b)
