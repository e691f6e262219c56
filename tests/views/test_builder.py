"""The layer builder with conv and pool layers: the kind selector shows each kind's inputs, every
card shows its layer's output shape, impossible geometry is refused at the widget with the
reason, and the memory estimate follows."""

import panel as pn
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig
from batscope.widgets.builder import NetworkBuilder, shape_text


def _shown(card) -> list:
    """The inputs on a card's grid (a hidden input is left out of it, not only hidden)."""
    grid = next(o for o in card.objects if isinstance(o, pn.GridBox))
    assert all(w.visible for w in grid.objects)
    return grid.objects


def _widgets(card, label_prefix):
    return next(w for w in _shown(card) if str(w.name).startswith(label_prefix))


def _hidden(card, label_prefix) -> bool:
    return not any(str(w.name).startswith(label_prefix) for w in _shown(card))


def _texts(builder, css):
    return [
        o.object
        for card in builder._cards.objects
        for o in card.objects
        if css in getattr(o, "css_classes", [])
    ]


def _builder():
    net = NetworkSpec(layers=[LayerSpec(size=30, theta=0.2), LayerSpec(size=10, theta=0.5)])
    return NetworkBuilder(net, TrainingConfig(task="mnist")), net


def test_shape_text():
    assert shape_text((24, 24, 15)) == "24×24×15 = 8640 neurons"
    assert shape_text((300,)) == "300 neurons"


def test_a_conv_and_a_pool_layer_are_built_through_the_widgets():
    builder, net = _builder()
    first = builder._cards.objects[0]
    _widgets(first, "layer type").value = "conv"
    assert net.layers[0].kind == "conv"
    assert _widgets(first, "channels").visible and _hidden(first, "N (neurons)")
    _widgets(first, "channels").value = 6
    _widgets(first, "kernel k").value = 3
    builder._add.clicks += 1  # a copy of the conv, before the output
    second = builder._cards.objects[1]
    _widgets(second, "layer type").value = "pool"
    assert _hidden(second, "θ") and _widgets(second, "pool size").visible
    assert [s.kind for s in net.layers] == ["conv", "pool", "dense"]
    shapes = _texts(builder, "layer-shape")
    assert shapes == [
        "**Output**: 26×26×6 = 4056 neurons",
        "**Output**: 13×13×6 = 1014 neurons",
        "**Output**: 10 neurons",
    ]
    assert "**Memory**: a run needs" in builder._memory.object


def _alert(card):
    return next(o for o in card.objects if isinstance(o, pn.pane.Alert))


def test_impossible_geometry_is_refused_at_the_widget_and_nothing_changes():
    net = NetworkSpec(
        layers=[
            LayerSpec(kind="conv", channels=6, kernel_size=5),  # 24×24×6
            LayerSpec(kind="pool", pool_size=2),  # 12×12×6
            LayerSpec(kind="conv", channels=4, kernel_size=5),  # 8×8×4
            LayerSpec(size=30),
            LayerSpec(size=10),
        ]
    )
    builder = NetworkBuilder(net, TrainingConfig(task="mnist"))
    cards = builder._cards.objects
    before = net.to_dict()
    pool = _widgets(cards[1], "pool size")
    pool.value = 8  # 24 // 8 = 3: too small for the 5×5 kernel after it
    assert pool.value == 2 and net.to_dict() == before
    assert _alert(cards[1]).visible
    assert "network.layers[2] (conv): kernel size 5 is larger than its 3×3×6 input" in (
        _alert(cards[1]).object.replace("\\", "")
    )
    kind = _widgets(cards[4], "layer type")
    kind.value = "conv"  # after the dense layer 4: refused
    assert kind.value == "dense" and net.to_dict() == before
    assert "needs an image input" in _alert(cards[4]).object
    _widgets(cards[2], "kernel k").value = 11  # 12×12 -> 2×2: fine
    assert net.shapes[3] == (2, 2, 4)
    assert _texts(builder, "layer-shape")[2] == "**Output**: 2×2×4 = 16 neurons"
    assert not _alert(cards[2]).visible


def test_a_toy_task_refuses_conv_and_pool_layers_at_the_widget():
    net = NetworkSpec(layers=[LayerSpec(size=5), LayerSpec(size=2)])
    training = TrainingConfig(task="xor")
    builder = NetworkBuilder(net, training)
    card = builder._cards.objects[0]
    kind = _widgets(card, "layer type")
    kind.value = "pool"
    assert kind.value == "dense" and net.layers[0].kind == "dense"
    assert "input is flat; conv and pool layers need an image task" in _alert(card).object
    training.task = "mnist"
    kind.value = "pool"
    assert net.layers[0].kind == "pool" and not _alert(card).visible
