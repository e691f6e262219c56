"""Presets and the URL query: every preset loads and round-trips; a link reproduces a setup."""

from __future__ import annotations

import pytest
from batscope.app.presets import (
    apply_preset,
    list_presets,
    load_preset,
    preset_from_dict,
    preset_of,
)
from batscope.app.urlstate import UrlState, apply_url_dict, set_sizes, url_dict
from batscope.training.state import NetworkSpec, TrainingConfig, check_config, run_config

PAPER = {"convergence", "convergence-ttfs", "mnist-multi", "mnist-single", "fashion-mnist"}


def test_paper_and_teaching_presets_present():
    names = set(list_presets())
    assert PAPER <= names
    assert any(load_preset(n).locked and load_preset(n).hidden for n in names)


@pytest.mark.parametrize("name", list_presets())
def test_preset_round_trip_and_consistent(name):
    p = load_preset(name)
    net, cfg = NetworkSpec(), TrainingConfig()
    apply_preset(p, net, cfg)
    assert run_config(net, cfg) == p.config
    assert check_config(net, cfg) == []
    again = preset_of(p.name, p.title, net, cfg, p.description, p.hidden, p.locked)
    assert again == p
    assert preset_from_dict(p.to_dict()) == p


def test_preset_refuses_unknown_hidden_control():
    d = load_preset("convergence").to_dict()
    d["hidden"] = ["warp_drive"]
    with pytest.raises(ValueError, match="warp_drive"):
        preset_from_dict(d)


def test_mnist_preset_matches_paper():
    p = load_preset("mnist-multi").config
    assert [layer["size"] for layer in p["network"]["layers"]] == [800, 10]
    assert [layer["theta"] for layer in p["network"]["layers"]] == [0.2, 1.3]
    t = p["training"]
    assert (t["y_true"], t["y_false"], t["lr"], t["batch_size"], t["t_max"]) == (
        15,
        3,
        0.003,
        50,
        0.2,
    )


def test_url_round_trip_reproduces_setup():
    net, cfg = NetworkSpec(), TrainingConfig()
    state = UrlState(net, cfg)
    apply_url_dict({"preset": "fashion-mnist", "seed": 7, "lr": 0.001, "sizes": "30-20-10"}, state)
    d = url_dict(state)
    assert (d["preset"], d["seed"], d["lr"], d["sizes"], d["task"]) == (
        "fashion-mnist",
        7,
        0.001,
        "30-20-10",
        "fashion-mnist",
    )
    net2, cfg2 = NetworkSpec(), TrainingConfig()
    apply_url_dict(d, UrlState(net2, cfg2))
    assert run_config(net2, cfg2) == run_config(net, cfg)


def test_url_sizes_follow_the_builder():
    net, cfg = NetworkSpec(), TrainingConfig()
    state = UrlState(net, cfg)
    net.add_layer(0)
    net.layers[0].size = 7
    assert state.sizes == "7-2"
    with pytest.raises(ValueError, match="sizes"):
        set_sizes(net, "7-x")
