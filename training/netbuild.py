"""A run configuration's layer dicts (training/state.py ``LayerSpec.to_dict``) as engine layers.

One place turns ``{"size": ...}`` (dense; the dict written before conv layers existed),
``{"kind": "conv", ...}`` and ``{"kind": "pool", ...}`` into ``Dense``, ``Conv2D`` and ``Pool2D``,
and gives the input shape the network is built on: (28, 28, 1) for an image task (the Dense
layers after it read the pixels channels-last, row-major: pixel (row, col) is input
row·28 + col, the order ``encode_ttfs`` writes), ``(n,)`` for a flat one.
"""

from __future__ import annotations

from batscope.engine.init import Normal, Uniform
from batscope.engine.layers import Conv2D, Dense, Pool2D

from .state import IMAGE_TASKS, input_shape_of


def initializer(layer: dict):
    """The weight initialiser of a layer dict (uniform low/high or normal mean/std)."""
    if layer.get("init", "uniform") == "normal":
        return Normal(float(layer.get("init_mean", 0.0)), float(layer.get("init_std", 1.0)))
    return Uniform(float(layer.get("init_low", -1.0)), float(layer.get("init_high", 1.0)))


def engine_layer(d: dict):
    """The engine layer of one layer dict of a run configuration."""
    kind = d.get("kind", "dense")
    if kind == "pool":
        return Pool2D(int(d["pool_size"]))
    neuron = {
        "tau_s": float(d["tau_s"]),
        "theta": float(d["theta"]),
        "reset": None if d.get("reset") is None else float(d["reset"]),
        "n_max": int(d["n_max"]),
        "init": initializer(d),
    }
    if kind == "conv":
        return Conv2D(int(d["channels"]), int(d["kernel_size"]), **neuron)
    return Dense(int(d["size"]), **neuron)


def engine_layers(network: dict) -> list:
    """The engine layers of a run configuration's ``network`` dict, in order."""
    return [engine_layer(d) for d in network["layers"]]


def network_input_shape(config: dict, n_inputs: int) -> tuple:
    """The input shape of a run configuration: the task's image shape when its network has a
    conv or pool layer, else the flat ``(n_inputs,)`` (a dense network of an image task reads
    the same 784 neurons either way)."""
    layers = config["network"]["layers"]
    if any(d.get("kind", "dense") != "dense" for d in layers):
        task = config["training"]["task"]
        if task not in IMAGE_TASKS:
            raise ValueError(f"conv and pool layers need an image task, not {task!r}")
        return input_shape_of(task)
    return (int(n_inputs),)
