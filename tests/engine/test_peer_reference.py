"""benchmarks/peer_bats_reference.py: batscope beside the authors' BATS code on one GPU.

The harness's description of the reference's networks must stay the network that
engine/bench.py times (checked everywhere); the agreement itself needs a GPU and the
reference's folder beside the checkout.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from batscope.engine.bench import build_network
from batscope.engine.layers import Pool2D

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "peers" / "bats-reference"


def _harness():
    spec = importlib.util.spec_from_file_location(
        "peer_bats_reference", ROOT / "benchmarks" / "peer_bats_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("net", ["dense", "net3"])
def test_the_reference_is_given_the_benchmarked_network(net):
    harness = _harness()
    spec = harness.DENSE if net == "dense" else harness.NET3
    network, y_true = build_network(net, "cpu", "float32", 0)
    assert spec["y_true"] == y_true
    assert len(spec["layers"]) == len(network.layers)
    for described, layer in zip(spec["layers"], network.layers, strict=True):
        if isinstance(layer, Pool2D):
            assert described == "pool" and layer.size == 2
            continue
        size = layer.n if hasattr(layer, "n") else layer.channels
        assert described == (size, layer.tau_s, layer.theta, layer.n_max)
        assert layer.reset == layer.theta  # the reference's delta_theta = theta


@pytest.mark.gpu
def test_dense_agrees_with_the_reference_on_an_mnist_batch():
    """Same weights, same batch: every spike count equal, gradients parallel (measured on an
    H200: counts 100 % equal, times within 6e-6 s, gradient cosines 1 - 4e-9)."""
    if not (REFERENCE / "bats").is_dir():
        pytest.skip(f"{REFERENCE} is not present")
    import sys

    import cupy as cp

    sys.path.insert(0, str(REFERENCE))
    harness = _harness()
    from batscope.datasets import load_sample

    images, labels = load_sample("mnist", "train")
    batch = harness.device_batches(images[:50].reshape(50, -1), labels[:50], 50, cp)[0]
    weights = [cp.asnumpy(w) for w in build_network("dense", "gpu", "float32", 0)[0].weights]
    res = harness.agreement(
        harness.Ours("dense", weights), harness.Reference("dense", weights, cp), batch, cp
    )
    for layer in res["layers"]:
        assert layer["counts_agree"] == 1.0
        assert layer["max_time_diff_s"] < 1e-4
    for g in res["gradients"]:
        assert g["cosine"] > 1 - 1e-6
        assert np.isfinite(g["max_rel_diff"]) and g["max_rel_diff"] < 1e-2
