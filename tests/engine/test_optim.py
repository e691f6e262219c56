"""Optimisers, LR schedule and clipping (docs/training.md §2)."""

import json
import math

import numpy as np
import pytest
from batscope.engine.optim import SGD, Adam, LRSchedule, clip_grad_norm


def adam_by_hand(w, grads, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Scalar-by-scalar Adam (docs/training.md §2), in Python floats."""
    w = [float(x) for x in w]
    m = [0.0] * len(w)
    v = [0.0] * len(w)
    for t, g in enumerate(grads, start=1):
        for i, gi in enumerate(g):
            m[i] = b1 * m[i] + (1 - b1) * gi
            v[i] = b2 * v[i] + (1 - b2) * gi * gi
            mh = m[i] / (1 - b1**t)
            vh = v[i] / (1 - b2**t)
            w[i] -= lr * mh / (math.sqrt(vh) + eps)
    return np.array(w)


def test_sgd_step_in_place():
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    ref = w
    SGD(0.1).step([w], [np.array([[1.0, -1.0], [0.5, 0.0]])])
    assert ref is w
    np.testing.assert_allclose(w, [[0.9, 2.1], [2.95, 4.0]], rtol=1e-15)


def test_adam_matches_hand_computation():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=6)
    grads = [rng.normal(size=6) * 10.0**k for k in (-3, 0, 2, -1, 1)]
    w = [w0[:4].reshape(2, 2).copy(), w0[4:].copy()]
    opt = Adam(0.01)
    for g in grads:
        opt.step(w, [g[:4].reshape(2, 2), g[4:]])
    expect = adam_by_hand(w0, grads, 0.01)
    np.testing.assert_allclose(np.concatenate([w[0].ravel(), w[1]]), expect, rtol=1e-12, atol=0)
    assert opt.t == 5


def test_adam_first_step_is_lr_times_sign():
    # bias correction: m̂ = g, v̂ = g², so the first step is −λ·g/(|g| + ε)
    w, g = np.zeros(3), np.array([2.0, -3.0, 1e-3])
    Adam(0.5).step([w], [g])
    np.testing.assert_allclose(w, -0.5 * g / (np.abs(g) + 1e-8), rtol=1e-14)


def test_adam_float32_keeps_dtype():
    w = np.ones((2, 3), dtype=np.float32)
    opt = Adam(1e-3)
    opt.step([w], [np.full((2, 3), 0.5, dtype=np.float32)])
    assert w.dtype == np.float32 and opt.m[0].dtype == np.float32
    np.testing.assert_allclose(w, 1 - 1e-3, rtol=1e-6)


def test_adam_state_dict_round_trip_resumes_identically(tmp_path):
    rng = np.random.default_rng(1)
    grads = [[rng.normal(size=(3, 2))] for _ in range(6)]
    w_a = [np.ones((3, 2))]
    a = Adam(0.01, beta1=0.8)
    for g in grads[:3]:
        a.step(w_a, g)
    state = a.state_dict()
    arrays = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    scalars = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    np.savez(tmp_path / "opt.npz", **arrays)
    (tmp_path / "opt.json").write_text(json.dumps(scalars))
    loaded = dict(np.load(tmp_path / "opt.npz", allow_pickle=False))
    loaded.update(json.loads((tmp_path / "opt.json").read_text()))
    b = Adam(1.0)
    b.load_state_dict(loaded)
    w_b = [w_a[0].copy()]
    for g in grads[3:]:
        a.step(w_a, g)
        b.step(w_b, g)
    np.testing.assert_array_equal(w_a[0], w_b[0])
    assert b.beta1 == 0.8 and b.t == 6


def test_state_validation_leaves_optimizer_untouched():
    opt = Adam(0.1)
    w = [np.zeros(2)]
    opt.step(w, [np.ones(2)])
    good = opt.state_dict()
    for bad in (
        {**good, "type": "SGD"},
        {**good, "lr": -1.0},
        {**good, "v.0": -np.ones(2)},
        {k: v for k, v in good.items() if k != "m.0"},
        {**good, "m.0": np.ones(3)},
    ):
        with pytest.raises(ValueError):
            opt.load_state_dict(bad)
    assert opt.t == 1 and opt.lr == 0.1
    np.testing.assert_array_equal(opt.m[0], good["m.0"])
    sgd = SGD(0.2)
    sgd.load_state_dict({"type": "SGD", "lr": 0.05})
    assert sgd.lr == 0.05
    with pytest.raises(ValueError, match="SGD"):
        sgd.load_state_dict(good)


def test_step_validation_is_atomic():
    w = [np.zeros(2), np.zeros(3)]
    with pytest.raises(ValueError, match=r"grads\[1\]"):
        SGD(0.1).step(w, [np.ones(2), np.array([1.0, np.nan, 0.0])])
    with pytest.raises(ValueError, match="shape"):
        Adam(0.1).step(w, [np.ones(2), np.ones(2)])
    with pytest.raises(ValueError, match="grads"):
        SGD(0.1).step(w, [np.ones(2)])
    assert not w[0].any()
    with pytest.raises(ValueError, match="lr"):
        SGD(0.0)
    with pytest.raises(ValueError, match="beta2"):
        Adam(0.1, beta2=1.0)
    with pytest.raises(TypeError, match="lr"):
        Adam("0.1")


def test_lr_schedule_values():
    s = LRSchedule(factor=0.5, every=10, floor=1e-4)
    got = [s.lr(0.003, e) for e in (0, 9, 10, 19, 20, 30, 49, 100)]
    expect = [0.003, 0.003, 0.0015, 0.0015, 0.00075, 0.000375, 0.0001875, 1e-4]
    np.testing.assert_allclose(got, expect, rtol=1e-15)
    # closed form equals the recursion λ ← max(γλ, floor) at e > 0, e mod every == 0
    lr = 0.003
    for e in range(1, 120):
        if e % 10 == 0:
            lr = max(0.5 * lr, 1e-4)
        assert s.lr(0.003, e) == pytest.approx(lr, rel=1e-14)
    assert LRSchedule().lr(0.1, 1000) == 0.1
    assert LRSchedule(factor=0.5, every=3).lr(1.0, 7) == 0.25
    with pytest.raises(ValueError, match="every"):
        LRSchedule(every=0)
    with pytest.raises(ValueError, match="factor"):
        LRSchedule(factor=1.5)
    with pytest.raises(ValueError, match="epoch"):
        s.lr(0.1, -1)


def test_clip_grad_norm():
    g = [np.array([3.0, 0.0]), np.array([[0.0, 4.0]])]
    clipped, norm = clip_grad_norm(g, 1.0)
    assert norm == pytest.approx(5.0, rel=1e-15)
    np.testing.assert_allclose(clipped[0], [0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(clipped[1], [[0.0, 0.8]], rtol=1e-15)
    np.testing.assert_array_equal(g[0], [3.0, 0.0])  # inputs untouched
    same, norm2 = clip_grad_norm(g, 10.0)
    assert norm2 == pytest.approx(5.0) and same[0] is not g[0]
    np.testing.assert_array_equal(same[1], g[1])
    f32, _ = clip_grad_norm([np.ones(4, dtype=np.float32)], 1.0)
    assert f32[0].dtype == np.float32
    np.testing.assert_allclose(f32[0], 0.5, rtol=1e-6)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(g, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_fused_cpu_kernel_equals_numpy_expression(dtype):
    """The fused Numba update and the NumPy expression (non-contiguous arrays) agree bitwise."""
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(40, 30)).astype(dtype)
    grads = [rng.normal(size=(40, 30)).astype(dtype) for _ in range(4)]
    fused, plain = Adam(lr=3e-3), Adam(lr=3e-3)
    w_fused = w0.copy()
    w_plain = np.asfortranarray(w0.copy())  # not C-contiguous: takes the NumPy path
    for g in grads:
        fused.step([w_fused], [g])
        plain.step([w_plain], [np.asfortranarray(g)])
    np.testing.assert_array_equal(w_fused, w_plain)
    np.testing.assert_array_equal(fused.state_dict()["v.0"], plain.state_dict()["v.0"])
