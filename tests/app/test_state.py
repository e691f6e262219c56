"""State classes: bounds refuse bad values, round trips, cross-field checks."""

from __future__ import annotations

import pytest
from batscope.training.state import (
    LayerSpec,
    NetworkSpec,
    TrainingConfig,
    ViewConfig,
    apply_run_config,
    check_config,
    run_config,
    task_shape,
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 0),
        ("tau_s", 0.0),
        ("tau_s", -1.0),
        ("theta", 0.0),
        ("reset", 0.0),
        ("n_max", 0),
        ("init", "xavier"),
        ("init_std", -0.1),
    ],
)
def test_layer_refuses_invalid_values(field, value):
    spec = LayerSpec()
    before = getattr(spec, field)
    with pytest.raises(ValueError, match=field):
        setattr(spec, field, value)
    assert getattr(spec, field) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", 0.0),
        ("batch_size", 0),
        ("epochs", 0),
        ("seed", -1),
        ("task", "cifar"),
        ("lr_decay", 1.5),
        ("t_max", 0.0),
        ("backend", "tpu"),
    ],
)
def test_training_refuses_invalid_values(field, value):
    cfg = TrainingConfig()
    with pytest.raises(ValueError, match=field):
        setattr(cfg, field, value)


def test_reset_defaults_to_theta():
    spec = LayerSpec(theta=0.7)
    assert spec.to_dict()["reset"] == 0.7
    spec.reset = 0.3
    assert spec.to_dict()["reset"] == 0.3


def test_layer_round_trip_and_unknown_field():
    spec = LayerSpec(size=800, tau_s=0.13, theta=0.2, n_max=30, init="normal", init_std=0.5)
    again = LayerSpec.from_dict(spec.to_dict())
    assert again.to_dict() == spec.to_dict()
    with pytest.raises(ValueError, match="unknown field"):
        LayerSpec.from_dict({"size": 3, "colour": "red"})


def test_training_param_update_round_trip():
    cfg = TrainingConfig()
    d = {**cfg.to_dict(), "lr": 0.003, "seed": 7, "optimizer": "adam", "task": "mnist"}
    cfg.param.update(**d)
    assert cfg.to_dict() == d
    other = TrainingConfig()
    other.set_from_dict(cfg.to_dict())
    assert other.to_dict() == cfg.to_dict()


def test_network_add_remove_move():
    net = NetworkSpec()
    first = net.layers[0]
    net.add_layer(0, LayerSpec(size=5))
    assert net.sizes == [5, 2]
    net.move_layer(0, +1)
    assert net.sizes == [2, 5] and net.layers[0] is first
    net.move_layer(1, +5)  # clipped at the end
    assert net.sizes == [2, 5]
    net.remove_layer(1)
    assert net.sizes == [2]
    with pytest.raises(ValueError, match="at least one layer"):
        net.remove_layer(0)
    with pytest.raises(ValueError, match="index"):
        net.add_layer(7)


def test_revision_bumps_on_any_layer_change():
    net = NetworkSpec()
    r = net.revision
    net.layers[0].theta = 0.5
    assert net.revision > r
    r = net.revision
    spec = net.add_layer(0)
    assert net.revision > r
    r = net.revision
    spec.size = 9
    assert net.revision > r


def test_check_config_messages():
    net, cfg = NetworkSpec(), TrainingConfig()
    assert check_config(net, cfg) == []
    cfg.y_true = 12  # S = 10
    assert any("unreachable" in m for m in check_config(net, cfg))
    cfg.y_true = 10
    net.layers[0].size = 3
    assert any("2 classes" in m for m in check_config(net, cfg))
    net.layers[0].param.update(size=2, init="uniform", init_low=1.0, init_high=0.0)
    assert any("init_low" in m for m in check_config(net, cfg))


def test_apply_run_config_is_all_or_nothing():
    net, cfg = NetworkSpec(), TrainingConfig()
    before = run_config(net, cfg)
    bad = run_config(net, cfg)
    bad["training"]["lr"] = 0.5
    bad["network"]["layers"][0]["tau_s"] = -1.0
    with pytest.raises(ValueError, match="tau_s"):
        apply_run_config(bad, net, cfg)
    assert run_config(net, cfg) == before
    good = run_config(net, cfg)
    good["training"]["seed"] = 3
    apply_run_config(good, net, cfg)
    assert cfg.seed == 3


def test_task_shapes_and_view_defaults():
    assert task_shape("convergence") == (4, 2)
    assert task_shape("mnist") == (784, 10)
    assert task_shape("emnist") == (784, 47)
    v = ViewConfig()
    assert (v.sample_index, v.layer, v.neurons, v.raster_mode, v.svg_export) == (
        0,
        1,
        [0],
        "auto",
        False,
    )
