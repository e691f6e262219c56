"""float32 forward vs float64: no lost spikes when a crossing coincides with an input.

Regression for a float32 bug (method.md §4 note 4, "no interval starts above threshold"): a
candidate spike one rounding after the next input was rejected by (E6); once that input was
integrated the membrane sat at u >= theta, the re-centred root rounded to y <= 1, (E4) rejected
it, and the neuron lost that spike and every later one. engine.cpu (and engine/cuda/dense.cuh)
now reject a candidate outside (t_r, next] only if the advance to next leaves u < theta.

Reproducer (before the fix): the tests/gpu "grid_stride" case with float32-valued inputs,
seed 7, sample 3589, neuron 200 fired 2 spikes in float32 and 4 in float64 (the third crossing
is 1.6e-9 s before an input at 0.06546026 s; u_dot = 2.03, not grazing).

Neurons are compared when they are unambiguous: no spike (of either dtype) is near-grazing
(u_dot < 0.1 theta/tau) or lies within WINDOW of an inhibitory input, where a float32-sized shift
of the crossing legitimately decides whether the inhibition cancels the spike.
"""

import numpy as np
import pytest
from batscope.engine import cpu

GRAZE = 0.1  # u_dot below GRAZE * theta/tau: near-grazing
WINDOW = 1e-5  # s; float32 times are within ~1e-6 s of float64 here


def inputs(rng, n_b, n_i, k_i, t_hi, rate=1.0):
    """Sorted float32-valued trains (the same values in both dtypes)."""
    t = np.sort(rng.uniform(0.0, t_hi, (n_b, n_i, k_i)), axis=2)
    counts = rng.binomial(k_i, rate, (n_b, n_i)).astype(np.int32)
    t[np.arange(k_i)[None, None, :] >= counts[..., None]] = np.inf
    return t.astype(np.float32), counts


def coincident_probes(times, counts, w, params, w_probe):
    """Add inputs at every float64 crossing: for post neuron j, three pre neurons fire at
    float32(t_jk) - 1 ulp, float32(t_jk) and + 1 ulp, with weight ``w_probe`` onto j only (0
    elsewhere). With ``w_probe = 0`` the exact dynamics are unchanged; the float32 crossings
    then fall on either side of an input, within rounding. Returns the new (times, counts, w).
    """
    n_b, n_i, k_i = times.shape
    n_o, n_s = w.shape[1], params[3]
    t64, _, _ = _forward(times, counts, w, params, np.float64)
    s = t64.astype(np.float32)
    probes = [np.nextafter(s, np.float32(-np.inf)), s, np.nextafter(s, np.float32(np.inf))]
    k = max(k_i, n_s)
    out = np.full((n_b, n_i + 3 * n_o, k), np.inf, np.float32)
    out[:, :n_i, :k_i] = times
    w_out = np.zeros((1, n_o, n_i + 3 * n_o), np.float32)
    w_out[:, :, :n_i] = w
    for a, p in enumerate(probes):
        lo = n_i + a * n_o
        out[:, lo : lo + n_o, :n_s] = np.where(np.isfinite(s), p, np.inf)
        w_out[0, np.arange(n_o), lo + np.arange(n_o)] = w_probe
    return out, np.isfinite(out).sum(axis=2).astype(np.int32), w_out


def _forward(times, counts, w, params, dtype):
    group = np.zeros(times.shape[0], np.int32)
    return cpu.dense_forward(times.astype(dtype), counts, w.astype(dtype), group, *params)


def unambiguous(res, times, w, params):
    """[B, No] mask: every spike of either result is neither near-grazing nor within WINDOW of
    an inhibitory input of that neuron."""
    tau_s, theta = params[0], params[1]
    ok = np.ones(res[0][1].shape, dtype=bool)
    cols = (w[0] < 0).any(axis=0)  # pre neurons inhibitory for some post neuron
    k = int(np.isfinite(times[:, cols]).sum(axis=2).max(initial=0))
    inh = np.repeat(w[0][:, cols] < 0, k, axis=1)  # [No, M]
    flat = times[:, cols, :k].reshape(times.shape[0], -1).astype(float)  # [B, M]
    for t, _, ud in res:
        ok &= ((ud > GRAZE * theta / (2 * tau_s)) | ~np.isfinite(t)).all(axis=2)
        for b in range(0, t.shape[0], 16):
            sl = slice(b, b + 16)
            with np.errstate(invalid="ignore"):  # inf - inf: empty slots
                d = np.abs(t[sl, :, :, None].astype(float) - flat[sl, None, None, :])
            ok[sl] &= ~((d < WINDOW) & inh[None, :, None, :]).any(axis=(2, 3))
    return ok


def _check(times, counts, w, params, min_spikes):
    """float32 counts equal float64 counts on every unambiguous neuron; times within 1e-4 s."""
    r64 = _forward(times, counts, w, params, np.float64)
    r32 = _forward(times, counts, w, params, np.float32)
    ok = unambiguous((r64, r32), times, w, params)
    assert ok.mean() >= 0.8, ok.mean()
    assert r64[1][ok].sum() >= min_spikes
    bad = np.argwhere(ok & (r32[1] != r64[1]))
    assert len(bad) == 0, [(b, j, r32[1][b, j], r64[1][b, j]) for b, j in bad[:5]]
    fin = np.isfinite(r64[0]) & ok[..., None]
    assert np.abs(r32[0][fin] - r64[0][fin]).max() <= 1e-4
    return r64, r32


def test_reported_reproducer_keeps_every_spike():
    """The tests/gpu grid_stride recipe, seed 7, with float32-valued inputs in both dtypes."""
    rng = np.random.default_rng(7)
    times, counts = inputs(rng, 5000, 20, 2, 0.5, rate=0.8)
    w = rng.normal(0.6, 0.8, (1, 300, 20)).astype(np.float32)
    params = (0.1, 0.05, 0.05, 4, 1.0)
    r64, r32 = _check(times, counts, w, params, min_spikes=100_000)
    for b, j in ((3589, 200), (2510, 126), (4274, 63)):  # lost spikes in earlier versions
        assert r32[1][b, j] == r64[1][b, j] == 4


@pytest.mark.parametrize("w_probe", [0.0, 0.3])
@pytest.mark.parametrize("seed", range(4))
def test_inputs_coinciding_with_crossings(seed, w_probe):
    rng = np.random.default_rng(seed)
    times, counts = inputs(rng, 20, 20, 3, 0.5)
    w = rng.normal(0.25, 0.8, (1, 40, 20)).astype(np.float32)
    params = (0.1, 0.1, 0.05, 30, 1.0)
    p_times, p_counts, p_w = coincident_probes(times, counts, w, params, w_probe)
    r64, r32 = _check(p_times, p_counts, p_w, params, min_spikes=5000)
    if w_probe == 0.0:  # zero-weight probes leave the float64 result unchanged
        base = _forward(times, counts, w, params, np.float64)
        np.testing.assert_array_equal(r64[1], base[1])
        np.testing.assert_allclose(r64[0], base[0], rtol=0, atol=1e-12)
    # float32 spikes exactly at an input time: the crossings do coincide with inputs
    assert np.isin(r32[0], p_times[np.isfinite(p_times)]).sum() > 50


@pytest.mark.parametrize("w_probe", [None, 0.0, 0.3])
def test_long_runs_with_many_spikes(w_probe):
    """100 tau_s, ~150 spikes per neuron, where float32 input times are coarse (1e-6 s)."""
    rng = np.random.default_rng(5)
    tau_s = 0.1
    times, counts = inputs(rng, 4, 20, 40, 100 * tau_s)
    w = rng.normal(0.1, 0.8, (1, 24, 20)).astype(np.float32)
    params = (tau_s, 0.1, 0.05, 300, 100 * tau_s)
    if w_probe is not None:
        times, counts, w = coincident_probes(times, counts, w, params, w_probe)
    r64, _ = _check(times, counts, w, params, min_spikes=10_000)
    assert np.nanmax(np.where(np.isfinite(r64[0]), r64[0], np.nan)) > 90 * tau_s


def test_forward_constants_round_t_max_down():
    consts = cpu.forward_constants(np.float32, 0.1, 0.05, 0.05, 0.1)
    assert all(isinstance(v, np.float32) for i, v in enumerate(consts) if i != 5)
    t_lim = consts[5]
    assert isinstance(t_lim, float) and t_lim <= 0.1
    assert float(np.nextafter(np.float32(t_lim), np.float32(np.inf))) > 0.1
    assert cpu.below(np.inf, np.dtype(np.float32)) == np.inf
    assert cpu.below(1e300, np.dtype(np.float32)) == float(np.finfo(np.float32).max)
    assert cpu.below(0.1, np.dtype(np.float64)) == 0.1
