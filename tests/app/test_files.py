"""Uploads and downloads: model zip and run config round trips; bad files refused."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from batscope.training.files import (
    config_bytes,
    metrics_csv,
    model_bytes,
    parse_config,
    read_model,
)
from batscope.training.state import run_config
from batscope.training.telemetry import MetricRow

pn = pytest.importorskip("panel")


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_model_round_trip_sets_architecture_and_weights(export):
    ctrl = export.controller
    net = ctrl.current_network()
    net.weights = [np.full((2, 4), 0.25)]
    data = model_bytes(net)
    ctrl.network.layers[0].n_max = 3  # the upload must bring the architecture back
    assert export.load_model(data)
    assert ctrl.network.layers[0].n_max == 10
    np.testing.assert_array_equal(ctrl.initial_weights[0], np.full((2, 4), 0.25))
    np.testing.assert_array_equal(ctrl.current_network().weights[0], np.full((2, 4), 0.25))
    assert read_model(data).build().config() == net.config()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"this is not a zip",
        _zip({"model.json": "{}"}),
        _zip({"model.json": "not json", "model.npz": b"x"}),
        _zip(
            {
                "model.json": json.dumps(
                    {"format": "batscope-network", "version": 1, "n_inputs": 4, "layers": []}
                ),
                "model.npz": b"x",
            }
        ),
    ],
)
def test_corrupt_model_refused_network_untouched(export, data):
    ctrl = export.controller
    before = run_config(ctrl.network, ctrl.training)
    assert export.load_model(data) is False
    assert export.message.alert_type == "danger" and "Model refused" in export.message.object
    assert run_config(ctrl.network, ctrl.training) == before
    assert ctrl.initial_weights is None


def test_model_with_corrupt_weights_refused(export):
    good = model_bytes(export.controller.current_network())
    with zipfile.ZipFile(io.BytesIO(good)) as z:
        cfg = z.read("model.json")
    assert export.load_model(_zip({"model.json": cfg, "model.npz": b"PK\x03\x04garbage"})) is False
    assert "model.npz" in export.message.object


def test_model_for_another_task_refused(export):
    ctrl = export.controller
    data = model_bytes(ctrl.current_network())
    ctrl.training.task = "xor"  # 3 inputs
    assert export.load_model(data) is False
    assert "inputs" in export.message.object


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"version": 1}',
        b'{"network": {"layers": [{"size": 0}]}, "training": {}}',
    ],
)
def test_corrupt_config_refused(export, data):
    ctrl = export.controller
    before = run_config(ctrl.network, ctrl.training)
    assert export.load_config(data) is False
    assert export.message.alert_type == "danger"
    assert run_config(ctrl.network, ctrl.training) == before


def test_config_round_trip(export):
    ctrl = export.controller
    d = run_config(ctrl.network, ctrl.training)
    d["training"]["seed"] = 11
    assert export.load_config(config_bytes(d))
    assert ctrl.training.seed == 11
    assert parse_config(config_bytes(d)) == d


def test_metrics_csv():
    text = metrics_csv(
        [MetricRow(0, 0, "train", 1.5, 0.5, 0.1, 10.0), MetricRow(1, 1, "val", float("nan"), 1.0)]
    )
    lines = text.strip().split("\n")
    assert lines[0] == "step,epoch,split,loss,accuracy,lr,samples_per_s"
    assert lines[1] == "0,0,train,1.5,0.5,0.1,10.0" and lines[2].startswith("1,1,val,nan,1.0")
