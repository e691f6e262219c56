"""The schema of limits: every bound, finite floats, nesting, unknown fields, all or nothing."""

from __future__ import annotations

import copy
import json
import math
import time

import pytest
from batscope.training.limits import (
    MAX_CONFIG_BYTES,
    MAX_JSON_DEPTH,
    check_depth,
    escape,
    parse_json,
    validate_config,
)
from batscope.training.state import (
    MAX_LAYERS,
    MAX_NEURONS,
    MAX_SWEEP_RUNS,
    LayerSpec,
    NetworkSpec,
    SweepConfig,
    TrainingConfig,
    apply_run_config,
    run_config,
)


def _config() -> dict:
    return run_config(NetworkSpec(), TrainingConfig())


LAYER_OUT_OF_BOUNDS = [
    ("size", 0, "at least 1"),
    ("size", 4097, "at most 4096"),
    ("size", 2.0, "integer"),
    ("size", True, "boolean"),
    ("tau_s", 0.0, "greater than 0"),
    ("tau_s", 100.5, "at most 100"),
    ("theta", -1.0, "greater than 0"),
    ("theta", 1e4, "at most 1000"),
    ("reset", 0.0, "greater than 0"),
    ("reset", 1e4, "at most 1000"),
    ("n_max", 0, "at least 1"),
    ("n_max", 1001, "at most 1000"),
    ("init", "xavier", "xavier"),
    ("init_low", -101.0, "at least -100"),
    ("init_high", 101.0, "at most 100"),
    ("init_mean", 1e9, "at most 100"),
    ("init_std", -0.1, "at least 0"),
    ("init_std", "1", "numeric"),
]

TRAINING_OUT_OF_BOUNDS = [
    ("t_max", 0.0, "greater than 0"),
    ("t_max", 1001.0, "at most 1000"),
    ("t_enc", 101.0, "at most 100"),
    ("tau_l", 0.0, "greater than 0"),
    ("lr", 0.0, "greater than 0"),
    ("lr", 101.0, "at most 100"),
    ("lr_decay", 0.0, "greater than 0"),
    ("lr_decay", 1.5, "at most 1"),
    ("lr_every", 0, "at least 1"),
    ("lr_floor", -1.0, "at least 0"),
    ("y_true", 1001, "at most 1000"),
    ("y_false", -1, "at least 0"),
    ("batch_size", 0, "at least 1"),
    ("batch_size", 4097, "at most 4096"),
    ("epochs", 0, "at least 1"),
    ("epochs", 100_001, "at most 100000"),
    ("n_train", 5, "at least 10"),
    ("val_fraction", 0.9, "at most 0.5"),
    ("seed", -1, "at least 0"),
    ("seed", 2**31, "at most"),
    ("task", "cifar", "cifar"),
    ("loss", "hinge", "hinge"),
    ("dtype", "float16", "float16"),
]


@pytest.mark.parametrize(("field", "value", "bound"), LAYER_OUT_OF_BOUNDS)
def test_each_layer_bound_is_refused_with_field_and_bound(field, value, bound):
    d = _config()
    d["network"]["layers"][0][field] = value
    with pytest.raises(ValueError, match=rf"network\.layers\[0\]\.{field}:.*{bound}"):
        validate_config(d)


@pytest.mark.parametrize(("field", "value", "bound"), TRAINING_OUT_OF_BOUNDS)
def test_each_training_bound_is_refused_with_field_and_bound(field, value, bound):
    d = _config()
    d["training"][field] = value
    with pytest.raises(ValueError, match=rf"training\.{field}:.*{bound}"):
        validate_config(d)


FLOAT_LAYER_FIELDS = ["tau_s", "theta", "reset", "init_low", "init_high", "init_mean", "init_std"]
FLOAT_TRAINING_FIELDS = ["t_max", "t_enc", "tau_l", "lr", "lr_decay", "lr_floor", "val_fraction"]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "path",
    [("network", "layers", 1, f) for f in FLOAT_LAYER_FIELDS]
    + [("training", f) for f in FLOAT_TRAINING_FIELDS],
)
def test_no_nan_or_inf_in_any_field_nested_included(path, bad):
    d = _config()
    d["network"]["layers"].append(dict(d["network"]["layers"][0]))  # the 2nd layer is nested
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(ValueError, match=path[-1]):
        validate_config(d)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_json_nan_and_infinity_literals_are_refused(literal):
    text = json.dumps(_config()).replace('"lr": 0.1', f'"lr": {literal}')
    assert literal in text
    with pytest.raises(ValueError, match="finite"):
        parse_json(text.encode(), "config")


@pytest.mark.parametrize(
    ("where", "match"),
    [
        (lambda d: d.update(extra=1), "config: unknown field"),
        (lambda d: d["network"].update(extra=1), "network"),
        (lambda d: d["network"]["layers"][0].update(colour="red"), r"layers\[0\].*colour"),
        (lambda d: d["training"].update(warp=9), "training: unknown field.*warp"),
    ],
)
def test_unknown_fields_are_refused_at_every_level(where, match):
    d = _config()
    where(d)
    with pytest.raises(ValueError, match=match):
        validate_config(d)


def test_validate_config_normalises_and_fills_defaults():
    d = _config()
    del d["training"]["seed"], d["network"]["layers"][0]["init_std"]
    out = validate_config(d)
    assert out == _config() and out is not d


def test_layer_count_is_checked_before_any_layer_is_built(monkeypatch):
    d = _config()
    d["network"]["layers"] = [d["network"]["layers"][0]] * (MAX_LAYERS + 1)
    built = []
    monkeypatch.setattr(LayerSpec, "from_dict", classmethod(lambda cls, *a: built.append(a)))
    with pytest.raises(ValueError, match=rf"1 to {MAX_LAYERS} layers, not {MAX_LAYERS + 1}"):
        validate_config(d)
    assert built == []


def test_total_neurons_is_bounded_everywhere():
    d = _config()
    big = {**d["network"]["layers"][0], "size": 4096}
    d["network"]["layers"] = [big, big, big, big, {**big, "size": 2}]
    with pytest.raises(ValueError, match=f"at most {MAX_NEURONS}"):
        validate_config(d)
    sizes = [4096, 4096, 4096, 4000, 2]
    net = NetworkSpec(layers=[LayerSpec(size=n) for n in sizes])
    with pytest.raises(ValueError, match=f"at most {MAX_NEURONS}"):
        net.add_layer(0)
    assert net.sizes == sizes
    with pytest.raises(ValueError, match=f"at most {MAX_NEURONS}"):
        net.layers[4].size = 200  # a builder edit: refused and put back
    assert net.sizes == sizes


def test_layer_count_bound_holds_for_the_builder():
    net = NetworkSpec(layers=[LayerSpec(size=2) for _ in range(MAX_LAYERS)])
    with pytest.raises(ValueError, match=f"1 to {MAX_LAYERS} layers"):
        net.add_layer()
    assert len(net.layers) == MAX_LAYERS


def test_sweep_grid_step_and_repeats_are_bounded():
    sweep = SweepConfig()
    with pytest.raises(ValueError, match="step.*at least 0.05"):
        sweep.step = 0.01
    with pytest.raises(ValueError, match="repeats.*at most 1000"):
        sweep.repeats = 1001
    with pytest.raises(ValueError, match="mu_max.*finite|mu_max.*at most"):
        sweep.mu_max = math.nan
    with pytest.raises(ValueError, match="repeats = 1000 would make 169000 sweep runs"):
        sweep.repeats = 1000  # 13 x 13 cells x 1000
    assert sweep.repeats == 100
    assert sweep.runs == 16_900 <= MAX_SWEEP_RUNS
    sweep.repeats = 500  # 84,500 runs: allowed
    with pytest.raises(ValueError, match=f"at most {MAX_SWEEP_RUNS}"):
        sweep.step = 0.1
    assert (sweep.step, sweep.repeats) == (0.2, 500)


def test_nothing_changes_when_a_late_field_is_refused():
    net, cfg = NetworkSpec(), TrainingConfig()
    before = run_config(net, cfg)
    d = _config()
    d["training"]["seed"] = 5
    d["network"]["layers"] = [dict(d["network"]["layers"][0], size=30)] * 3
    d["network"]["layers"][2] = dict(d["network"]["layers"][2], theta=math.inf)
    with pytest.raises(ValueError, match=r"layers\[2\]\.theta"):
        apply_run_config(d, net, cfg)
    assert run_config(net, cfg) == before
    d["network"]["layers"][2]["theta"] = 1.0
    d["training"]["lr"] = math.nan
    with pytest.raises(ValueError, match="training.lr"):
        apply_run_config(d, net, cfg)
    assert run_config(net, cfg) == before


def test_deep_json_is_refused_before_parsing_and_quickly():
    deep = b"[" * 200_000 + b"]" * 200_000
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="too large|at most"):
        parse_json(deep, "config")  # over the size limit first
    shallow_enough = b'{"a": ' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH
    assert parse_json(shallow_enough, "config")
    too_deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    with pytest.raises(ValueError, match=f"deeper than {MAX_JSON_DEPTH}"):
        parse_json(too_deep, "config")
    brackets_in_strings = json.dumps({"a": "[[[[[[[[[[[[[[[[[[[[[[[[", "b": '\\"[[[[[[[[[[[[['})
    assert parse_json(brackets_in_strings.encode(), "config")["a"].startswith("[")
    assert time.perf_counter() - t0 < 1.0


def test_parse_json_size_and_encoding():
    with pytest.raises(ValueError, match="empty"):
        parse_json(b"", "config")
    with pytest.raises(ValueError, match=f"at most {MAX_CONFIG_BYTES}"):
        parse_json(b" " * (MAX_CONFIG_BYTES + 1), "config")
    with pytest.raises(ValueError, match="UTF-8"):
        parse_json(b"\xff\xfe{}", "config")


def test_check_depth_of_a_parsed_object():
    obj: list = []
    inner = obj
    for _ in range(MAX_JSON_DEPTH):
        inner.append([])
        inner = inner[0]
    with pytest.raises(ValueError, match="deeper"):
        check_depth(obj, "config")
    check_depth(copy.deepcopy(obj)[0], "config")


def test_escape_leaves_no_tag_and_no_markdown_link():
    text = escape('<img src=x onerror="alert(1)"> [a](javascript:x) **b**\n# h', 500)
    assert "<" not in text and ">" not in text and '"' not in text
    assert "\\[a\\]" in text and "\\*\\*b" in text and "\n" not in text
    assert escape("x" * 1000).endswith("…") and len(escape("x" * 1000)) < 100
