"""Show-the-code: a runnable Python script for the current training configuration.

:func:`render_script` turns a run configuration (the dict ``training.state.run_config`` writes:
``{"version", "network": {"layers": [...]}, "training": {...}}``) into a standalone script that
trains the same network on the same data with the public ``batscope.engine`` and
``batscope.datasets`` API, step by step as ``training.trainer.Trainer`` does (docs/training.md §2):
forward → loss and errors → exact backward → mean gradient → optimiser step.
"""

from __future__ import annotations

import json
import math

TOY_TASKS = ("convergence", "xor", "first", "patterns")
SAMPLE_TASKS = ("mnist", "fashion-mnist")
CHOICES = {
    "loss": ("spike_count", "ttfs_ce"),
    "optimizer": ("sgd", "adam"),
    "predict": ("reference", "strict"),
    "dtype": ("float64", "float32"),
    "backend": ("cpu", "gpu", "auto"),
}
EVAL_CAP = 1000  # test samples evaluated, as in the app


def _num(d: dict, key: str, where: str, integer: bool = False):
    if key not in d:
        raise ValueError(f"config: {where}.{key} is missing")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"config: {where}.{key} must be a finite number, got {v!r}")
    if integer:
        if int(v) != v:
            raise ValueError(f"config: {where}.{key} must be an integer, got {v!r}")
        return int(v)
    return float(v)


def _choice(d: dict, key: str, default: str, options) -> str:
    v = d.get(key, default)
    if v not in options:
        raise ValueError(f"config: training.{key} must be one of {options}, got {v!r}")
    return v


def _layer_code(layer: dict, i: int) -> str:
    where = f"network.layers[{i}]"
    kind = layer.get("kind", "dense")
    if kind not in ("dense", "conv", "pool"):
        raise ValueError(f"config: {where}.kind must be 'dense', 'conv' or 'pool'")
    if kind == "pool":
        return f"    Pool2D({_num(layer, 'pool_size', where, integer=True)}),"
    if kind == "conv":
        channels = _num(layer, "channels", where, integer=True)
        head = f"Conv2D({channels}, kernel_size={_num(layer, 'kernel_size', where, integer=True)}, "
    else:
        head = f"Dense({_num(layer, 'size', where, integer=True)}, "
    tau_s, theta = _num(layer, "tau_s", where), _num(layer, "theta", where)
    reset = theta if layer.get("reset") is None else _num(layer, "reset", where)
    n_max = _num(layer, "n_max", where, integer=True)
    if layer.get("init", "uniform") == "normal":
        init = (
            f"Normal(mean={float(layer.get('init_mean', 0.0))!r}, "
            f"std={float(layer.get('init_std', 1.0))!r})"
        )
    elif layer.get("init", "uniform") == "uniform":
        init = (
            f"Uniform({float(layer.get('init_low', -1.0))!r}, "
            f"{float(layer.get('init_high', 1.0))!r})"
        )
    else:
        raise ValueError(f"config: {where}.init must be 'uniform' or 'normal'")
    return (
        f"    {head}tau_s={tau_s!r}, theta={theta!r}, reset={reset!r}, n_max={n_max}, init={init}),"
    )


def _data_code(tr: dict) -> str:
    task = tr["task"]
    if task in TOY_TASKS:
        return (
            f'task = datasets.toy_task("{task}")\n'
            "x_train, y_train = task.inputs, np.asarray(task.labels)\n"
            "x_val = y_val = None\n"
            "x_test, y_test = x_train, y_train  # toy task: the patterns themselves\n"
            "BATCH_SIZE = x_train.batch_size  # toy tasks train full-batch\n"
        )
    if task in SAMPLE_TASKS or task == "emnist":
        n_train = _num(tr, "n_train", "training", integer=True)
        val = _num(tr, "val_fraction", "training") if "val_fraction" in tr else 0.0
        if task == "emnist":
            load = (
                'images, labels = datasets.load("emnist-balanced", "train", download=False)'
                "  # download=True fetches it\n"
                'test_images, test_labels = datasets.load("emnist-balanced", "test", '
                "download=False)\n"
            )
        else:
            load = (
                f'images, labels = datasets.load_sample("{task}", "train")  # embedded, '
                "offline\n"
                f'test_images, test_labels = datasets.load_sample("{task}", "test")\n'
            )
        return (
            load + f"n = min({n_train}, len(images))\n"
            f"n_val = int(round(n * {val!r}))\n"
            "train_idx, val_idx = datasets.train_val_split(n, n_val) if n_val else "
            "(np.arange(n), None)\n"
            "x_all = datasets.encode_ttfs(images[:n], t_enc=T_ENC, dtype=DTYPE)  # TTFS encoding\n"
            "x_train, y_train = take(x_all, train_idx), labels[:n][train_idx]\n"
            "x_val, y_val = (take(x_all, val_idx), labels[:n][val_idx]) if n_val else "
            "(None, None)\n"
            f"x_test = datasets.encode_ttfs(test_images[:{EVAL_CAP}], t_enc=T_ENC, dtype=DTYPE)\n"
            f"y_test = test_labels[:{EVAL_CAP}]\n"
            f"BATCH_SIZE = min({_num(tr, 'batch_size', 'training', integer=True)}, "
            "x_train.batch_size)\n"
        )
    if task == "yin-yang":
        return (
            "# Yin-Yang: generated from its published rule; one spike per feature + a bias spike\n"
            'features, y_train = datasets.load("yin-yang", "train")\n'
            "x_train = datasets.encode_yinyang(features, dtype=DTYPE)\n"
            'features, y_val = datasets.load("yin-yang", "val")\n'
            "x_val = datasets.encode_yinyang(features, dtype=DTYPE)\n"
            'features, y_test = datasets.load("yin-yang", "test")\n'
            "x_test = datasets.encode_yinyang(features, dtype=DTYPE)\n"
            f"BATCH_SIZE = min({_num(tr, 'batch_size', 'training', integer=True)}, "
            "x_train.batch_size)\n"
        )
    if task == "shd":
        n_train = _num(tr, "n_train", "training", integer=True)
        val = _num(tr, "val_fraction", "training") if "val_fraction" in tr else 0.0
        return (
            "# SHD: your copy of the official files in $BATSCOPE_DATA/shd (or pass data_dir=...);\n"
            "# no checksum is pinned for them, hence verify=False\n"
            'x_all, labels = datasets.load_shd("train", verify=False, dtype=DTYPE)\n'
            'x_test, y_test = datasets.load_shd("test", verify=False, dtype=DTYPE)\n'
            f"n = min({n_train}, len(labels))\n"
            f"n_val = int(round(n * {val!r}))\n"
            "train_idx, val_idx = datasets.train_val_split(n, n_val, 0) if n_val else "
            "(np.arange(n), None)\n"
            "x_train, y_train = take(x_all, train_idx), labels[train_idx]\n"
            "x_val, y_val = (take(x_all, val_idx), labels[val_idx]) if n_val else (None, None)\n"
            f"BATCH_SIZE = min({_num(tr, 'batch_size', 'training', integer=True)}, "
            "x_train.batch_size)\n"
        )
    raise ValueError(f"config: training.task {task!r} is not a known task")


def render_script(config: dict) -> str:
    """A runnable script that trains ``config`` (a ``run_config`` dict) and prints accuracies."""
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    net, tr = config.get("network"), config.get("training")
    if not isinstance(net, dict) or not isinstance(tr, dict):
        raise ValueError("config needs 'network' and 'training' objects")
    layers = net.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError("config: network.layers must be a non-empty list")
    if "task" not in tr:
        raise ValueError("config: training.task is missing")
    loss = _choice(tr, "loss", "spike_count", CHOICES["loss"])
    optimizer = _choice(tr, "optimizer", "sgd", CHOICES["optimizer"])
    predict = _choice(tr, "predict", "reference", CHOICES["predict"])
    dtype = _choice(tr, "dtype", "float64", CHOICES["dtype"])
    backend = _choice(tr, "backend", "cpu", CHOICES["backend"])
    if loss == "ttfs_ce":
        loss_code = f"TTFSCrossEntropy(tau_l={_num(tr, 'tau_l', 'training')!r})"
    else:
        loss_code = (
            f"SpikeCountClass(y_true={_num(tr, 'y_true', 'training')!r}, "
            f"y_false={_num(tr, 'y_false', 'training')!r})"
        )
    lr = _num(tr, "lr", "training")
    opt_code = f"Adam({lr!r})" if optimizer == "adam" else f"SGD({lr!r})"
    layer_lines = "\n".join(_layer_code(d, i) for i, d in enumerate(layers))
    image = any(isinstance(d, dict) and d.get("kind", "dense") != "dense" for d in layers)
    # conv / pool layers read the 28x28 image, pixel (row, col) = input row*28 + col
    net_input = "input_shape=(28, 28, 1)" if image else "x_train.n_neurons"
    kinds = {d.get("kind", "dense") for d in layers}
    names = {"conv": "Conv2D", "dense": "Dense", "pool": "Pool2D"}
    layer_types = ", ".join(names[k] for k in sorted(kinds))
    inits = ", ".join(k for k in ("Normal", "Uniform") if f"init={k}(" in layer_lines)
    t_enc = _num(tr, "t_enc", "training") if "t_enc" in tr else 0.1
    config_json = json.dumps(config, indent=2, sort_keys=True, default=str)
    commented = "\n".join("#   " + line for line in config_json.splitlines())
    return f'''"""Train a BATS spiking network with exact gradients (generated by batscope).

Every spike time is computed in closed form and every gradient is exact (batscope's
docs/forward.md and docs/backward.md); the loop is the one the app runs:
forward -> loss and errors -> backward -> mean gradient -> step.
"""

import numpy as np

from batscope import datasets
from batscope.engine.backend import to_numpy
from batscope.engine.init import {inits}
from batscope.engine.layers import {layer_types}
from batscope.engine.losses import {loss_code.split("(")[0]}
from batscope.engine.network import Network
from batscope.engine.optim import {opt_code.split("(")[0]}, LRSchedule
from batscope.engine.spikes import SpikeTrains

# The app's configuration:
{commented}

SEED = {_num(tr, "seed", "training", integer=True)}
T_MAX = {_num(tr, "t_max", "training")!r}  # simulation end T_sim [s]
T_ENC = {t_enc!r}  # TTFS encoding window [s] (image tasks)
EPOCHS = {_num(tr, "epochs", "training", integer=True)}
LR = {lr!r}
PREDICT = "{predict}"  # ties and silence: "reference" -> class 0, "strict" -> wrong
DTYPE = "{dtype}"
BACKEND = "{backend}"  # "cpu", "gpu" (CuPy) or "auto"


def take(x, idx):
    """The samples ``idx`` of a SpikeTrains batch."""
    return SpikeTrains(x.times[idx], x.counts[idx])


# ---- data ----
{_data_code(tr)}
# ---- network, loss, optimiser ----
net = Network({net_input}, layers=[
{layer_lines}
], backend=BACKEND, dtype=DTYPE, seed=SEED)
loss = {loss_code}
optimizer = {opt_code}
schedule = LRSchedule(factor={float(tr.get("lr_decay", 1.0))!r}, \
every={int(tr.get("lr_every", 10))}, floor={float(tr.get("lr_floor", 0.0))!r})


def accuracy(x, y, batch=100):
    """Fraction of samples whose prediction equals the label."""
    correct = 0
    for start in range(0, x.batch_size, batch):
        out = net.forward(take(x, slice(start, start + batch)), T_MAX)[-1]
        pred = to_numpy(loss.predict(out, mode=PREDICT))
        correct += int((pred == np.asarray(y[start:start + batch])).sum())
    return correct / x.batch_size


for epoch in range(EPOCHS):
    optimizer.lr = schedule.lr(LR, epoch)
    losses = []
    for idx in datasets.batches(x_train.batch_size, BATCH_SIZE, SEED, epoch):
        out = net.forward(take(x_train, idx), T_MAX)[-1]  # exact event-based forward
        value, errors = loss.loss_and_errors(out, net.xp.asarray(y_train[idx]))
        grads = net.backward(errors)  # exact gradients, summed over the batch
        weights = net.weights
        optimizer.step(weights, [g / len(idx) for g in grads])  # mean gradient
        net.weights = weights
        value = to_numpy(value)
        losses.extend(value[np.isfinite(value)])  # TTFS: +inf when the label neuron is silent
    mean_loss = np.mean(losses) if losses else float("nan")
    line = f"epoch {{epoch + 1}}/{{EPOCHS}}: loss {{mean_loss:.4f}}, "
    line += f"train accuracy {{accuracy(x_train, y_train):.3f}}"
    if x_val is not None:
        line += f", val accuracy {{accuracy(x_val, y_val):.3f}}"
    print(line, flush=True)

print(f"test accuracy: {{accuracy(x_test, y_test):.3f}}")
'''
