"""The app's state as plain ``param`` classes (no Panel): network, training and view settings.

Bounds refuse invalid values with a ``ValueError`` naming the parameter; cross-field problems
(a spike-count target the output layer cannot reach, an output size that is not the number of
classes) are reported as messages by :func:`check_config`, never raised mid-edit.
"""

from __future__ import annotations

import functools
import math

import param
from batscope.engine.backend import available_backends

TOY_TASKS = ("convergence", "xor", "first", "patterns")
IMAGE_TASKS = ("mnist", "fashion-mnist", "emnist")
TASKS = TOY_TASKS + IMAGE_TASKS
IMAGE_CLASSES = {"mnist": 10, "fashion-mnist": 10, "emnist": 47}
CONFIG_VERSION = 1


@functools.cache
def task_shape(task: str) -> tuple[int, int]:
    """``(n_inputs, n_classes)`` of a task (toy tasks are built once to find out)."""
    if task in IMAGE_CLASSES:
        return 784, IMAGE_CLASSES[task]
    if task not in TOY_TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    from batscope.datasets.toy import toy_task

    t = toy_task(task)
    return t.n_inputs, t.n_classes


def _positive(default, soft=None, doc=""):
    """A strictly positive, finite number (0 excluded)."""
    return param.Number(
        default, bounds=(0, None), inclusive_bounds=(False, True), softbounds=soft, doc=doc
    )


class LayerSpec(param.Parameterized):
    """One fully connected LIF layer (method.md §1): N, τs, θ, Δθ, S and the weight init."""

    size = param.Integer(10, bounds=(1, 4096), doc="Neurons N in the layer")
    tau_s = _positive(0.13, (1e-3, 2.0), "Synaptic time constant τs [s] (τ = 2τs)")
    theta = _positive(1.0, (0.01, 5.0), "Firing threshold θ")
    reset = param.Number(
        None,
        allow_None=True,
        bounds=(0, None),
        inclusive_bounds=(False, True),
        doc="Reset amount Δθ (u ← u − Δθ); empty = θ",
    )
    n_max = param.Integer(30, bounds=(1, 1000), doc="Spike buffer S: most spikes a neuron emits")
    init = param.Selector(default="uniform", objects=["uniform", "normal"], doc="Weight init")
    init_low = param.Number(-1.0, doc="Uniform init: lower bound")
    init_high = param.Number(1.0, doc="Uniform init: upper bound")
    init_mean = param.Number(0.0, doc="Normal init: mean μ")
    init_std = param.Number(1.0, bounds=(0, None), doc="Normal init: standard deviation σ")

    FIELDS = (
        "size",
        "tau_s",
        "theta",
        "reset",
        "n_max",
        "init",
        "init_low",
        "init_high",
        "init_mean",
        "init_std",
    )

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.FIELDS}
        d["reset"] = self.theta if self.reset is None else self.reset
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LayerSpec:
        unknown = set(d) - set(cls.FIELDS)
        if unknown:
            raise ValueError(f"layer: unknown field(s) {sorted(unknown)}")
        spec = cls()
        spec.param.update(**d)
        return spec


class NetworkSpec(param.Parameterized):
    """An ordered list of layers; the input size comes from the task."""

    layers = param.List(default=[], item_type=LayerSpec, doc="Layers, input side first")
    revision = param.Integer(0, doc="Bumped on any change to the layers or their fields")

    def __init__(self, **params):
        if "layers" not in params:
            params["layers"] = [LayerSpec(size=2, tau_s=1.0, theta=1.0, n_max=10)]
        self._watched: set[int] = set()
        super().__init__(**params)

    @param.depends("layers", watch=True, on_init=True)
    def _watch_layers(self):
        for spec in self.layers:
            if id(spec) not in self._watched:
                self._watched.add(id(spec))
                spec.param.watch(self._bump, list(LayerSpec.FIELDS))
        self._bump()

    def _bump(self, *events):
        self.revision += 1

    def add_layer(self, index: int | None = None, spec: LayerSpec | None = None) -> LayerSpec:
        """Insert a layer (default: a copy of the one before, or a 10-neuron layer) at ``index``."""
        layers = list(self.layers)
        index = len(layers) if index is None else index
        if not 0 <= index <= len(layers):
            raise ValueError(f"index must be in [0, {len(layers)}], got {index}")
        if spec is None:
            src = layers[index - 1] if index > 0 else (layers[0] if layers else None)
            spec = LayerSpec.from_dict(src.to_dict()) if src is not None else LayerSpec()
        layers.insert(index, spec)
        self.layers = layers
        return spec

    def remove_layer(self, index: int) -> None:
        if len(self.layers) <= 1:
            raise ValueError("a network needs at least one layer")
        if not 0 <= index < len(self.layers):
            raise ValueError(f"index must be in [0, {len(self.layers)}), got {index}")
        self.layers = [s for i, s in enumerate(self.layers) if i != index]

    def move_layer(self, index: int, offset: int) -> None:
        """Move layer ``index`` by ``offset`` places (-1 = up, +1 = down); clipped at the ends."""
        layers = list(self.layers)
        if not 0 <= index < len(layers):
            raise ValueError(f"index must be in [0, {len(layers)}), got {index}")
        new = min(max(index + offset, 0), len(layers) - 1)
        layers.insert(new, layers.pop(index))
        self.layers = layers

    @property
    def sizes(self) -> list[int]:
        return [s.size for s in self.layers]

    def to_dict(self) -> dict:
        return {"layers": [s.to_dict() for s in self.layers]}

    def set_from_dict(self, d: dict) -> None:
        layers = d.get("layers")
        if not isinstance(layers, list) or not layers:
            raise ValueError("network.layers must be a non-empty list")
        self.layers = [LayerSpec.from_dict(x) for x in layers]


class TrainingConfig(param.Parameterized):
    """Task, loss, optimiser, schedule and run settings (method.md §7, §10)."""

    task = param.Selector(default="convergence", objects=list(TASKS), doc="Task / dataset")
    t_max = _positive(10.0, (0.05, 20.0), "Simulation end T_sim [s]")
    t_enc = _positive(0.1, (0.01, 1.0), "TTFS encoding window T_enc [s] (image tasks)")
    loss = param.Selector(
        default="spike_count",
        objects=["spike_count", "ttfs_ce"],
        doc="Spike-count targets (surrogate) or TTFS cross-entropy (exact)",
    )
    y_true = param.Integer(10, bounds=(0, 1000), doc="Spike-count target of the label neuron")
    y_false = param.Integer(0, bounds=(0, 1000), doc="Spike-count target of the other neurons")
    tau_l = _positive(0.1, (1e-3, 1.0), "TTFS cross-entropy temperature τ_L [s]")
    predict = param.Selector(
        default="reference",
        objects=["reference", "strict"],
        doc="Prediction ties/silence: class 0 (reference) or wrong (strict)",
    )
    optimizer = param.Selector(default="sgd", objects=["sgd", "adam"], doc="Optimiser")
    lr = _positive(0.1, (1e-5, 1.0), "Learning rate λ")
    lr_decay = param.Number(
        1.0, bounds=(0, 1), inclusive_bounds=(False, True), doc="LR decay factor γ (1 = none)"
    )
    lr_every = param.Integer(10, bounds=(1, None), doc="Decay every this many epochs")
    lr_floor = param.Number(0.0, bounds=(0, None), doc="Smallest learning rate λ_min")
    batch_size = param.Integer(50, bounds=(1, 4096), doc="Batch size (toy tasks: full batch)")
    epochs = param.Integer(50, bounds=(1, 100_000), doc="Epochs")
    n_train = param.Integer(1000, bounds=(10, 60_000), doc="Training samples used (image tasks)")
    val_fraction = param.Number(0.1, bounds=(0, 0.5), doc="Share of training samples held out")
    seed = param.Integer(0, bounds=(0, 2**31 - 1), doc="Random seed (init, shuffling)")
    backend = param.Selector(default="cpu", objects=["cpu"], doc="Compute backend")
    dtype = param.Selector(default="float64", objects=["float64", "float32"], doc="Precision")

    FIELDS = (
        "task",
        "t_max",
        "t_enc",
        "loss",
        "y_true",
        "y_false",
        "tau_l",
        "predict",
        "optimizer",
        "lr",
        "lr_decay",
        "lr_every",
        "lr_floor",
        "batch_size",
        "epochs",
        "n_train",
        "val_fraction",
        "seed",
        "backend",
        "dtype",
    )

    def __init__(self, **params):
        super().__init__(**params)
        self.param.backend.objects = available_backends()

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.FIELDS}

    def set_from_dict(self, d: dict) -> None:
        unknown = set(d) - set(self.FIELDS)
        if unknown:
            raise ValueError(f"training: unknown field(s) {sorted(unknown)}")
        if d.get("backend") not in (None, *self.param.backend.objects):
            d = {**d, "backend": "cpu"}  # a config made on a GPU machine still loads here
        self.param.update(**d)


class SweepConfig(param.Parameterized):
    """The convergence sweep grid (method.md §12)."""

    variant = param.Selector(default="multi", objects=["multi", "single"])
    mu_max = param.Number(2.4, bounds=(0, 10))
    sigma_max = param.Number(2.4, bounds=(0, 10))
    step = _positive(0.2, (0.05, 1.0), "Grid spacing Δ")
    repeats = param.Integer(100, bounds=(1, 1000))
    epochs = param.Integer(50, bounds=(1, 1000))
    seed = param.Integer(0, bounds=(0, 2**31 - 1))
    predict = param.Selector(default="reference", objects=["reference", "strict"])


class ViewConfig(param.Parameterized):
    """What the views show: the sample, the layer and the membrane-trace neurons."""

    sample_index = param.Integer(0, bounds=(0, None), doc="Displayed sample")
    layer = param.Integer(1, bounds=(0, None), doc="Displayed layer (0 = input)")
    neurons = param.List(default=[0], item_type=int, doc="Membrane-trace neurons")
    raster_mode = param.Selector(default="auto", objects=["auto", "binned", "exact"])
    svg_export = param.Boolean(False, doc="Render plots as SVG for export")


def check_config(network: NetworkSpec, training: TrainingConfig) -> list[str]:
    """Cross-field problems as messages (empty list = consistent)."""
    msgs = []
    out = network.layers[-1]
    n_classes = task_shape(training.task)[1]
    if out.size != n_classes:
        msgs.append(
            f"The output layer has {out.size} neurons but task '{training.task}' has "
            f"{n_classes} classes: set the last layer's size to {n_classes}."
        )
    if training.loss == "spike_count":
        if training.y_true > out.n_max:
            msgs.append(
                f"y_true = {training.y_true} is unreachable: the output layer emits at "
                f"most S = {out.n_max} spikes per neuron."
            )
        if training.y_false >= training.y_true:
            msgs.append(f"y_false ({training.y_false}) should be below y_true ({training.y_true}).")
    for i, spec in enumerate(network.layers):
        reset = spec.theta if spec.reset is None else spec.reset
        if not math.isfinite(reset):
            msgs.append(f"Layer {i + 1}: the reset Δθ must be finite.")
        if spec.init == "uniform" and spec.init_low > spec.init_high:
            msgs.append(
                f"Layer {i + 1}: init_low ({spec.init_low}) must be <= init_high "
                f"({spec.init_high})."
            )
    if training.task in IMAGE_TASKS and training.t_enc >= training.t_max:
        msgs.append(f"T_enc ({training.t_enc} s) should be below T_sim ({training.t_max} s).")
    return msgs


def run_config(network: NetworkSpec, training: TrainingConfig) -> dict:
    """The JSON-able run configuration the Trainer is built from."""
    return {"version": CONFIG_VERSION, "network": network.to_dict(), "training": training.to_dict()}


def apply_run_config(d: dict, network: NetworkSpec, training: TrainingConfig) -> None:
    """Validate ``d`` fully on scratch objects, then apply it; nothing changes on any error."""
    if not isinstance(d, dict):
        raise ValueError("a run configuration must be a JSON object")
    if d.get("version", CONFIG_VERSION) != CONFIG_VERSION:
        raise ValueError(f"unsupported config version {d.get('version')!r}")
    if not isinstance(d.get("network"), dict) or not isinstance(d.get("training"), dict):
        raise ValueError("a run configuration needs 'network' and 'training' objects")
    scratch_net, scratch_cfg = NetworkSpec(), TrainingConfig()
    scratch_net.set_from_dict(d["network"])
    scratch_cfg.set_from_dict(d["training"])
    network.layers = scratch_net.layers
    training.param.update(**scratch_cfg.to_dict())
