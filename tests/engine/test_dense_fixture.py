"""Dense results are bit for bit those of the engine before the layer abstraction (issue 10).

``data/dense_before_layers.npz`` was recorded by :func:`record` at commit c719bd7 (the Dense-only
engine/cpu.py), float64 and float32: a 3-layer network's forward (times, counts, u_dot), its
backward (delta, weight gradients, input errors) and a direct kernel call on the group axis (the
convergence sweep's path). The hidden layer has more neurons than a forward block and than the
gradient kernel's chunking bound, so every code path of the kernels is crossed. The refactored
engine must reproduce every array exactly (``array_equal``, NaN-free, +inf padding included).
"""

from pathlib import Path

import numpy as np
import pytest
from batscope.engine import Dense, Network, Normal, SpikeTrains, cpu

FIXTURE = Path(__file__).with_name("data") / "dense_before_layers.npz"


def _network_case(dtype):
    rng = np.random.default_rng(7)
    times = np.sort(rng.uniform(0.0, 0.3, (4, 40, 3)), axis=2)
    times[:, ::5, 1:] = np.inf  # some inputs spike once, some never
    times[:, ::7, :] = np.inf
    times[0, 3, 0] = times[0, 4, 0] = 0.05  # coincident inputs
    net = Network(
        40,
        [
            Dense(300, 0.05, 0.3, reset=0.2, n_max=4, init=Normal(0.25, 0.4)),
            Dense(40, 0.08, 0.5, n_max=6, init=Normal(0.05, 0.1)),
            Dense(5, 0.1, 0.4, reset=0.6, n_max=5, init=Normal(0.5, 0.5)),
        ],
        dtype=dtype,
        seed=3,
    )
    out = net.forward(SpikeTrains.from_arrays(times.astype(dtype)), 0.6)
    phi = np.random.default_rng(8).normal(size=out[-1].times.shape)
    grads = net.backward(phi, input_errors=True)
    res = {}
    for k, o in enumerate(out):
        res[f"net_t{k}"] = o.times
        res[f"net_c{k}"] = o.counts
        res[f"net_ud{k}"] = net.udot[k]
        res[f"net_delta{k}"] = net.error_components[k].delta
        res[f"net_grad{k}"] = grads[k]
    res["net_phi_in"] = net.input_errors
    return res


def _group_case(dtype):
    rng = np.random.default_rng(11)
    times = np.sort(rng.uniform(0.0, 0.5, (9, 12, 2)), axis=2).astype(dtype)
    counts = np.full((9, 12), 2, np.int32)
    w = rng.normal(0.5, 0.5, (3, 6, 12)).astype(dtype)
    group = np.array([0, 1, 2, 0, 1, 2, 2, 2, 0], np.int32)
    t, c, ud = cpu.dense_forward(times, counts, w, group, 0.1, 0.1, 0.2, 8, 1.0)
    phi = np.where(np.isfinite(t), rng.normal(size=t.shape), 0.0).astype(dtype)
    delta, grad, phi_pre = cpu.dense_backward(
        times, counts, w, group, t, c, ud, phi, 0.1, 0.2, True
    )
    return {
        "grp_t": t,
        "grp_c": c,
        "grp_ud": ud,
        "grp_delta": delta,
        "grp_grad": grad,
        "grp_phi_in": phi_pre,
    }


def _results(dtype) -> dict:
    return {
        f"{np.dtype(dtype).name}_{k}": v
        for case in (_network_case, _group_case)
        for k, v in case(dtype).items()
    }


def record(path=FIXTURE) -> None:
    """Write the fixture from the engine as it is now (run once, before the refactor)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **_results("float64"), **_results("float32"))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dense_results_equal_the_recorded_ones_bit_for_bit(dtype):
    with np.load(FIXTURE, allow_pickle=False) as z:
        expected = {k: z[k] for k in z.files if k.startswith(dtype)}
    got = _results(dtype)
    assert sorted(got) == sorted(expected)
    spikes = 0
    for key, want in expected.items():
        have = np.asarray(got[key])
        assert have.dtype == want.dtype and have.shape == want.shape, key
        assert np.array_equal(have, want), f"{key}: max diff {np.nanmax(np.abs(have - want))}"
        if "_t" in key:
            spikes += int(np.isfinite(want).sum())
    assert spikes > 1000  # the recorded case is not trivially silent
