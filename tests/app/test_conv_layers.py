"""Conv and pool layers through the training layer: the schema (geometry refused naming the layer,
nothing changed), the URL's layer text, run configurations and model files (old ones still
load), the engine network built from a spec, memory estimates and the Net3 preset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from batscope.app.presets import apply_preset, load_preset
from batscope.app.urlstate import UrlState, parse_sizes, set_sizes, sizes_text
from batscope.engine import Conv2D, Dense, Pool2D
from batscope.training.codegen import render_script
from batscope.training.controller import TrainingController
from batscope.training.files import model_bytes, parse_config, read_model
from batscope.training.limits import validate_config
from batscope.training.resources import model_estimate, training_estimate
from batscope.training.state import (
    LayerSpec,
    NetworkSpec,
    TrainingConfig,
    ViewConfig,
    apply_run_config,
    check_config,
    layer_notation,
    run_config,
)
from batscope.training.trainer import Trainer, build_network

DATA = Path(__file__).with_name("data")


def _conv_net(*extra) -> NetworkSpec:
    return NetworkSpec(
        layers=[
            LayerSpec(kind="conv", channels=4, kernel_size=5, theta=0.1, n_max=2),
            LayerSpec(kind="pool", pool_size=2),
            *extra,
            LayerSpec(size=10, theta=0.5),
        ]
    )


def test_shapes_and_neurons_are_counted_from_the_geometry():
    net = _conv_net()
    assert net.shapes == [(28, 28, 1), (24, 24, 4), (12, 12, 4), (10,)]
    assert net.sizes == [2304, 576, 10]


def test_the_network_is_named_in_the_papers_notation():
    net3 = NetworkSpec()
    apply_preset(load_preset("mnist-net3"), net3, TrainingConfig())
    assert layer_notation(net3.layers, 784) == "784-15C5-P2-40C5-P2-300-10"
    assert layer_notation(_conv_net(LayerSpec(size=300)).layers, 784) == "784-4C5-P2-300-10"


def test_kernel_larger_than_its_input_and_pooling_to_nothing_are_refused():
    net = NetworkSpec(
        layers=[
            LayerSpec(kind="conv", channels=2, kernel_size=9),  # 20×20
            LayerSpec(kind="pool", pool_size=4),  # 5×5
            LayerSpec(kind="conv", channels=2, kernel_size=3),  # 3×3
            LayerSpec(size=10),
        ]
    )
    before = net.to_dict()
    with pytest.raises(ValueError, match=r"layers\[2\] \(conv\): kernel size 6 is larger"):
        net.layers[2].kernel_size = 6
    with pytest.raises(ValueError, match=r"layers\[3\] \(pool\): pooling 3×3×2 by 4 leaves"):
        net.add_layer(3, LayerSpec(kind="pool", pool_size=4))
    with pytest.raises(ValueError, match=r"layers\[3\] \(conv\): .*needs an image input"):
        net.add_layer(2, LayerSpec(size=5))  # a conv after a dense layer
    with pytest.raises(ValueError, match=r"layers\[3\] \(conv\): kernel size 5 is larger"):
        net.layers[3].kind = "conv"  # its default 5×5 kernel on the 3×3×2 input
    assert net.to_dict() == before
    net.layers[2].kernel_size = 5  # 1×1×2: fine, and the shapes follow
    assert net.shapes[3] == (1, 1, 2)


def test_bounds_of_conv_fields_are_in_the_schema():
    with pytest.raises(ValueError, match="channels"):
        LayerSpec(kind="conv", channels=0)
    with pytest.raises(ValueError, match="kernel_size"):
        LayerSpec(kind="conv", kernel_size=12)
    with pytest.raises(ValueError, match="kind"):
        LayerSpec(kind="conv3d")


def test_conv_layers_need_an_image_task():
    config = run_config(_conv_net(), TrainingConfig(task="mnist"))
    assert validate_config(config) == config
    toy = {**config, "training": {**config["training"], "task": "xor"}}
    with pytest.raises(ValueError, match="conv and pool layers need an image task"):
        validate_config(toy)
    msgs = check_config(_conv_net(), TrainingConfig(task="xor"))
    assert any("flat input" in m for m in msgs)


def test_url_layer_text_round_trips_and_keeps_neuron_fields():
    net, cfg = NetworkSpec(), TrainingConfig()
    apply_preset(load_preset("mnist-net3"), net, cfg)
    assert sizes_text(net) == "c15k5-p2-c40k5-p2-300-10"
    assert parse_sizes("c15k5-p2-300-10")[:2] == [
        {"kind": "conv", "channels": 15, "kernel_size": 5},
        {"kind": "pool", "pool_size": 2},
    ]
    set_sizes(net, "c8k3-p2-c40k5-p2-300-10")
    assert net.shapes[1] == (26, 26, 8) and net.layers[0].theta == 0.04  # θ kept
    state = UrlState(NetworkSpec(), TrainingConfig())
    assert state.load("?preset=mnist-net3&sizes=c15k5-p2-c40k5-p2-200-10")
    assert sizes_text(state.network) == "c15k5-p2-c40k5-p2-200-10"
    assert state.network.layers[4].theta == 0.6
    before = run_config(state.network, state.training)
    for bad in ("?sizes=c15k29-10", "?sizes=300-c4k3-10", "?sizes=c4-10", "?sizes=p0-10"):
        assert not state.load(bad)
        assert run_config(state.network, state.training) == before


def test_net3_preset_builds_the_papers_network():
    p = load_preset("mnist-net3")
    net = build_network(p.config, 784)
    assert net.shapes == [(28, 28, 1), (24, 24, 15), (12, 12, 15), (8, 8, 40), (4, 4, 40),
                          (300,), (10,)]  # fmt: skip
    kinds = [type(x) for x in net.layers]
    assert kinds == [Conv2D, Pool2D, Conv2D, Pool2D, Dense, Dense]
    assert [x.theta for x in net.layers if x.has_weights] == [0.04, 0.8, 0.6, 0.3]
    assert [x.n_max for x in net.layers if x.has_weights] == [1, 3, 10, 30]
    tr = p.config["training"]
    assert (tr["batch_size"], tr["y_true"], tr["y_false"], tr["lr"]) == (20, 30, 3, 0.003)
    assert (tr["lr_decay"], tr["lr_every"], tr["lr_floor"], tr["t_max"]) == (0.5, 10, 1e-4, 0.2)
    est = training_estimate(p.config)
    assert 1e8 < est.total < 2e9, est.describe()  # counted with the conv footprints


def test_generated_script_builds_a_conv_network():
    script = render_script(load_preset("mnist-net3").config)
    assert "Network(input_shape=(28, 28, 1), layers=[" in script
    assert "Conv2D(15, kernel_size=5, tau_s=0.13, theta=0.04" in script
    assert (
        "Pool2D(2)," in script
        and "from batscope.engine.layers import Conv2D, Dense, Pool2D" in script
    )
    compile(script, "net3.py", "exec")


def test_config_and_model_written_before_conv_layers_still_load():
    config = parse_config((DATA / "config-before-conv.json").read_bytes())
    net, cfg = NetworkSpec(), TrainingConfig()
    apply_run_config(config, net, cfg)
    assert [s.kind for s in net.layers] == ["dense", "dense"] and net.sizes == [4, 10]
    assert net.layers[1].init == "normal" and net.layers[1].init_std == 0.5
    assert "kind" not in run_config(net, cfg)["network"]["layers"][0]  # written as before
    model = read_model((DATA / "model-before-conv.zip").read_bytes(), 784)
    assert [s.size for s in model.specs] == [4, 10]
    built = model.build()
    assert built.shapes == [(784,), (4,), (10,)] and built.weights[0].shape == (4, 784)


def test_conv_model_file_round_trips_through_the_app():
    net, cfg = _conv_net(), TrainingConfig(task="mnist", dtype="float32")
    config = run_config(net, cfg)
    engine_net = build_network(config, 784)
    engine_net.weights = [np.full_like(w, 0.125) for w in engine_net.weights]
    model = read_model(model_bytes(engine_net), 784)
    assert [s.kind for s in model.specs] == ["conv", "pool", "dense"]
    assert [s.to_dict() for s in model.specs][:2] == [s.to_dict() for s in net.layers][:2]
    assert model_estimate((28, 28, 1), model.specs).total == 4 * 8 * (4 * 25 + 10 * 576)
    ctrl = TrainingController(NetworkSpec(), TrainingConfig(task="mnist"), ViewConfig(), Trainer)
    try:
        with ctrl.reserve_model(model.n_inputs, model.specs):
            loaded = model.build()
        assert loaded.shapes == engine_net.shapes
        np.testing.assert_array_equal(loaded.weights[0], engine_net.weights[0])
    finally:
        ctrl.shutdown()


def test_a_model_of_another_image_shape_is_refused_in_the_app():
    from batscope.engine import Network

    other = Network(input_shape=(8, 98, 1), layers=[Conv2D(2, 3, 0.1, 0.1, 2), Dense(10, 0.1, 1)])
    with pytest.raises(ValueError, match="input_shape"):
        read_model(model_bytes(other), 784)
    assert read_model(model_bytes(other)).build().shapes[0] == (8, 98, 1)  # the CLI's NIR export


def test_model_json_with_impossible_geometry_is_refused_naming_the_layer():
    import io
    import zipfile

    from batscope.engine import Network

    good = Network(input_shape=(28, 28, 1), layers=[Conv2D(2, 5, 0.1, 0.1, 2), Dense(10, 0.1, 1)])
    data = model_bytes(good)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    cfg = json.loads(members["model.json"])
    cfg["layers"][0]["kernel_size"] = 11
    cfg["layers"].insert(1, {"kind": "pool2d", "size": 6})  # 18×18 by 6: 3×3
    cfg["layers"].insert(
        2, {"kind": "conv2d", **{k: v for k, v in cfg["layers"][0].items() if k != "kind"}}
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model.json", json.dumps(cfg))
        z.writestr("model.npz", members["model.npz"])
    with pytest.raises(ValueError, match=r"model.json.layers\[2\] \(conv\): kernel size 11"):
        read_model(buf.getvalue(), 784)
