"""The app's state as plain ``param`` classes (no Panel): network, training and view settings.

These declarations are the schema of every value that enters the app: the builder's inputs,
the URL, uploaded configs and models all read their bounds from here (training/limits.py adds what
``param`` cannot say: JSON depth, upload sizes). Bounds refuse invalid values with a
``ValueError`` naming the parameter and the bound; floats are finite (no NaN, no ±inf);
integers are not booleans. Limits that span fields (total neurons, sweep runs) are refused
the same way, leaving the old value. Cross-field *consistency* problems (a spike-count target
the output layer cannot reach, an output size that is not the number of classes) are reported
as messages by :func:`check_config`, never raised mid-edit.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import param
from batscope.engine.backend import available_backends

TOY_TASKS = ("convergence", "xor", "first", "patterns")
IMAGE_TASKS = ("mnist", "fashion-mnist", "emnist")
EVENT_TASKS = ("yin-yang", "shd")  # recorded or generated events, their own splits (flat input)
TASKS = TOY_TASKS + IMAGE_TASKS + EVENT_TASKS
IMAGE_CLASSES = {"mnist": 10, "fashion-mnist": 10, "emnist": 47}
IMAGE_SHAPE = (28, 28, 1)  # the image tasks' input (H, W, C); toy tasks are flat
LAYER_KINDS = ("dense", "conv", "pool")
DATA_CHOICES = ("sample", "full")  # an image task's data: the embedded sample or the full set
CONFIG_VERSION = 1


@functools.cache
def task_shape(task: str) -> tuple[int, int]:
    """``(n_inputs, n_classes)`` of a task (toy tasks are built once to find out)."""
    if task in IMAGE_CLASSES:
        return 784, IMAGE_CLASSES[task]
    if task == "yin-yang":  # 4 features and the bias input (datasets/yinyang.py)
        from batscope.datasets.yinyang import N_CLASSES, N_FEATURES

        return N_FEATURES + 1, N_CLASSES
    if task == "shd":
        from batscope.datasets.shd import N_CHANNELS, N_CLASSES

        return N_CHANNELS, N_CLASSES
    if task not in TOY_TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    from batscope.datasets.toy import toy_task

    t = toy_task(task)
    return t.n_inputs, t.n_classes


MAX_LAYERS = 8  # layers in a network (the paper's deepest is 784-400-400-10)
MAX_NEURONS = 16384  # neurons summed over all layers (Net3 has 14 310)
MAX_CHANNELS = 128  # conv output channels (Net3: 15, 40)
MAX_KERNEL = 11  # conv kernel size k (k x k)
MAX_POOL = 8  # pooling window size
MAX_SWEEP_RUNS = 100_000  # convergence sweep: grid cells × repeats (paper Fig. 3: 16,900)


class Finite(param.Number):
    """A ``param.Number`` that refuses NaN, ±inf and booleans (bounds alone let NaN through)."""

    def _validate_value(self, val, allow_None):
        if isinstance(val, bool):
            raise ValueError(f"Number parameter {self.name!r} must be a number, not a boolean.")
        super()._validate_value(val, allow_None)
        if val is not None and not math.isfinite(val):
            raise ValueError(f"Number parameter {self.name!r} must be finite, not {val}.")


class Count(param.Integer):
    """A ``param.Integer`` that refuses booleans (``True`` is not a layer size)."""

    def _validate_value(self, val, allow_None):
        if isinstance(val, bool):
            raise ValueError(f"Integer parameter {self.name!r} must be an integer, not a boolean.")
        super()._validate_value(val, allow_None)


def _positive(default, bounds, soft=None, doc=""):
    """A finite number in ``(low, high]`` with ``low >= 0`` (``low`` itself excluded)."""
    return Finite(default, bounds=bounds, inclusive_bounds=(False, True), softbounds=soft, doc=doc)


def _refuse_over(obj, event, total: int, limit: int, what: str) -> None:
    """Put ``event``'s parameter back and raise when ``total`` exceeds ``limit``."""
    if total <= limit:
        return
    with param.parameterized.discard_events(obj):
        setattr(obj, event.name, event.old)
    raise ValueError(
        f"{type(obj).__name__}.{event.name} = {event.new} would make {total} {what}; "
        f"at most {limit} are allowed."
    )


class LayerSpec(param.Parameterized):
    """One LIF layer (docs/model.md §2): ``kind`` "dense" (N neurons), "conv" (``channels`` of
    ``kernel_size`` x ``kernel_size`` shared weights, valid, stride 1; docs/conv-pool.md §2) or
    "pool" (spike aggregation over ``pool_size`` x ``pool_size`` windows, no neurons of its
    own: τs, θ, S and init do not apply; docs/conv-pool.md §3); τs, θ, Δθ, S and the weight init."""

    kind = param.Selector(default="dense", objects=list(LAYER_KINDS), doc="Layer type")
    size = Count(10, bounds=(1, 4096), doc="Neurons N in the layer (dense)")
    channels = Count(8, bounds=(1, MAX_CHANNELS), doc="Output channels (conv)")
    kernel_size = Count(5, bounds=(1, MAX_KERNEL), doc="Kernel size k, k x k (conv)")
    pool_size = Count(2, bounds=(1, MAX_POOL), doc="Window size, size x size, stride size (pool)")
    tau_s = _positive(0.13, (0, 100.0), (1e-3, 2.0), "Synaptic time constant τs [s] (τ = 2τs)")
    theta = _positive(1.0, (0, 1000.0), (0.01, 5.0), "Firing threshold θ")
    reset = Finite(
        None,
        allow_None=True,
        bounds=(0, 1000.0),
        inclusive_bounds=(False, True),
        doc="Reset amount Δθ (u ← u − Δθ); empty = θ",
    )
    n_max = Count(30, bounds=(1, 1000), doc="Spike buffer S: most spikes a neuron emits")
    init = param.Selector(default="uniform", objects=["uniform", "normal"], doc="Weight init")
    init_low = Finite(-1.0, bounds=(-100.0, 100.0), doc="Uniform init: lower bound")
    init_high = Finite(1.0, bounds=(-100.0, 100.0), doc="Uniform init: upper bound")
    init_mean = Finite(0.0, bounds=(-100.0, 100.0), doc="Normal init: mean μ")
    init_std = Finite(1.0, bounds=(0, 100.0), doc="Normal init: standard deviation σ")

    NEURON_FIELDS = (
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
    #: the fields each kind writes (a dense layer's dict is the one written before conv layers)
    KIND_FIELDS = {
        "dense": ("size", *NEURON_FIELDS),
        "conv": ("kind", "channels", "kernel_size", *NEURON_FIELDS),
        "pool": ("kind", "pool_size"),
    }
    FIELDS = ("kind", "size", "channels", "kernel_size", "pool_size", *NEURON_FIELDS)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.KIND_FIELDS[self.kind]}
        if "reset" in d:
            d["reset"] = self.theta if self.reset is None else self.reset
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "layer") -> LayerSpec:
        """A LayerSpec from a dict; ``ValueError`` names ``where.<field>`` and the bound."""
        return cls(**_checked_fields(cls, d, where))

    def output_shape(self, in_shape: tuple, where: str = "layer") -> tuple:
        """The shape this layer makes of ``in_shape``; ``ValueError`` naming ``where`` and the
        reason when the geometry is impossible."""
        if self.kind == "dense":
            return (self.size,)
        name = f"{where} ({self.kind})"
        if len(in_shape) != 3:
            raise ValueError(
                f"{name}: a {self.kind} layer needs an image input (H, W, C), not the flat "
                f"{in_shape[0]} neurons of a dense layer or a flat task; conv and pool layers "
                "come before dense ones"
            )
        h, w, c = in_shape
        if self.kind == "conv":
            k = self.kernel_size
            if k > min(h, w):
                raise ValueError(f"{name}: kernel size {k} is larger than its {h}×{w}×{c} input")
            return (h - k + 1, w - k + 1, self.channels)
        p = self.pool_size
        if p > min(h, w):
            raise ValueError(f"{name}: pooling {h}×{w}×{c} by {p} leaves nothing (size > input)")
        return (h // p, w // p, c)


def layer_shapes(layers, input_shape: tuple | None = None) -> list[tuple]:
    """The input shape, then each layer's output shape; ``input_shape`` None: the image shape
    when any layer is conv or pool, else a flat input (its size does not matter). ValueError
    naming the layer and the reason for an impossible geometry."""
    if input_shape is None:
        input_shape = IMAGE_SHAPE if any(s.kind != "dense" for s in layers) else (1,)
    shapes = [tuple(input_shape)]
    for i, spec in enumerate(layers):
        shapes.append(spec.output_shape(shapes[-1], f"network.layers[{i}]"))
    return shapes


def layer_neurons(layers, input_shape: tuple | None = None) -> list[int]:
    """Neurons of each layer, counted from the shapes (:func:`layer_shapes`)."""
    return [math.prod(s) for s in layer_shapes(layers, input_shape)[1:]]


def layer_weights(layers, input_shape: tuple | None = None) -> list[int]:
    """Weights of each layer: N × inputs (dense), C_out k² C_in (conv, shared), 0 (pool)."""
    shapes = layer_shapes(layers, input_shape)
    out = []
    for spec, shape in zip(layers, shapes, strict=False):
        if spec.kind == "dense":
            out.append(spec.size * math.prod(shape))
        elif spec.kind == "conv":
            out.append(spec.channels * spec.kernel_size**2 * shape[2])
        else:
            out.append(0)
    return out


def check_layers(layers, input_shape: tuple | None = None) -> None:
    """ValueError for an impossible geometry or more than :data:`MAX_NEURONS` neurons."""
    check_total_neurons(layer_neurons(layers, input_shape))


def layer_notation(layers, n_inputs: int) -> str:
    """The network in the paper's notation, inputs first: ``784-15C5-P2-40C5-P2-300-10``
    (a conv layer is ``{channels}C{kernel size}``, a pool layer ``P{size}``, a dense layer its
    number of neurons)."""
    parts = [str(n_inputs)]
    for spec in layers:
        if spec.kind == "conv":
            parts.append(f"{spec.channels}C{spec.kernel_size}")
        elif spec.kind == "pool":
            parts.append(f"P{spec.pool_size}")
        else:
            parts.append(str(spec.size))
    return "-".join(parts)


def input_shape_of(task: str) -> tuple:
    """The input shape of a task: :data:`IMAGE_SHAPE` for an image task, ``(n,)`` for a toy."""
    return IMAGE_SHAPE if task in IMAGE_TASKS else (task_shape(task)[0],)


class NetworkSpec(param.Parameterized):
    """An ordered list of layers; the input comes from the task (images: 28×28×1)."""

    layers = param.List(
        default=[LayerSpec(size=2, tau_s=1.0, theta=1.0, n_max=10)],
        item_type=LayerSpec,
        bounds=(1, MAX_LAYERS),
        doc="Layers, input side first",
    )
    revision = param.Integer(0, doc="Bumped on any change to the layers or their fields")
    flat_input = param.Boolean(
        False,
        doc="The task's input is flat (a toy task): an edit to a conv or pool layer is refused",
    )

    GEOMETRY = ("kind", "size", "channels", "kernel_size", "pool_size")

    def __init__(self, **params):
        if "layers" not in params:
            params["layers"] = [LayerSpec(size=2, tau_s=1.0, theta=1.0, n_max=10)]
        check_layers(params["layers"])
        self._watched: set[int] = set()
        super().__init__(**params)

    @param.depends("layers", watch=True, on_init=True)
    def _watch_layers(self):
        for spec in self.layers:
            if id(spec) not in self._watched:
                self._watched.add(id(spec))
                spec.param.watch(self._bounded_geometry, list(self.GEOMETRY))
                spec.param.watch(self._bump, list(LayerSpec.FIELDS))
        self._bump()

    def _bounded_geometry(self, event):
        """A change that makes an impossible geometry or more than :data:`MAX_NEURONS`
        neurons is put back (ValueError naming the layer and the reason)."""
        if not any(s is event.obj for s in self.layers):
            return
        try:
            if self.flat_input and event.name == "kind" and event.new != "dense":
                i = next(k for k, s in enumerate(self.layers) if s is event.obj)
                raise ValueError(
                    f"network.layers[{i}] ({event.new}): the task's input is flat; conv and "
                    f"pool layers need an image task ({', '.join(IMAGE_TASKS)})"
                )
            check_layers(self.layers)
        except ValueError as exc:
            with param.parameterized.discard_events(event.obj):
                setattr(event.obj, event.name, event.old)
            raise ValueError(
                f"{type(event.obj).__name__}.{event.name} = {event.new}: {exc}"
            ) from None

    def _bump(self, *events):
        self.revision += 1

    def set_layers(self, layers: list[LayerSpec]) -> None:
        """Replace the layers, checking their number, geometry and total size first (nothing
        changes on error)."""
        if not 1 <= len(layers) <= MAX_LAYERS:
            raise ValueError(
                f"network.layers: a network has 1 to {MAX_LAYERS} layers, not {len(layers)}"
            )
        check_layers(layers)
        self.layers = list(layers)

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
        self.set_layers(layers)
        return spec

    def remove_layer(self, index: int) -> None:
        if len(self.layers) <= 1:
            raise ValueError("a network needs at least one layer")
        if not 0 <= index < len(self.layers):
            raise ValueError(f"index must be in [0, {len(self.layers)}), got {index}")
        self.set_layers([s for i, s in enumerate(self.layers) if i != index])

    def move_layer(self, index: int, offset: int) -> None:
        """Move layer ``index`` by ``offset`` places (-1 = up, +1 = down); clipped at the ends."""
        layers = list(self.layers)
        if not 0 <= index < len(layers):
            raise ValueError(f"index must be in [0, {len(layers)}), got {index}")
        new = min(max(index + offset, 0), len(layers) - 1)
        layers.insert(new, layers.pop(index))
        self.set_layers(layers)

    @property
    def has_image_layers(self) -> bool:
        """True when a conv or pool layer needs an image input."""
        return any(s.kind != "dense" for s in self.layers)

    @property
    def shapes(self) -> list[tuple]:
        """The input shape (images: 28×28×1; flat: (1,) stands for any) and each layer's."""
        return layer_shapes(self.layers)

    @property
    def sizes(self) -> list[int]:
        """Neurons of each layer, counted from the shapes."""
        return layer_neurons(self.layers)

    def to_dict(self) -> dict:
        return {"layers": [s.to_dict() for s in self.layers]}

    def set_from_dict(self, d: dict) -> None:
        """Layers from ``{"layers": [...]}``: their count is checked before any is built."""
        if not isinstance(d, dict) or set(d) - {"layers"}:
            raise ValueError("network: must be an object with only a 'layers' list")
        layers = d.get("layers")
        if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
            n = len(layers) if isinstance(layers, list) else type(layers).__name__
            raise ValueError(f"network.layers: must be a list of 1 to {MAX_LAYERS} layers, not {n}")
        specs = [LayerSpec.from_dict(x, f"network.layers[{i}]") for i, x in enumerate(layers)]
        self.set_layers(specs)


class TrainingConfig(param.Parameterized):
    """Task, loss, optimiser, schedule and run settings (docs/losses.md §1, docs/training.md §2)."""

    task = param.Selector(default="convergence", objects=list(TASKS), doc="Task / dataset")
    data = param.Selector(
        default="sample",
        objects=list(DATA_CHOICES),
        doc="Image tasks: the embedded sample (offline) or the full official dataset",
    )
    t_max = _positive(10.0, (0, 1000.0), (0.05, 20.0), "Simulation end T_sim [s]")
    t_enc = _positive(0.1, (0, 100.0), (0.01, 1.0), "TTFS encoding window T_enc [s] (image tasks)")
    loss = param.Selector(
        default="spike_count",
        objects=["spike_count", "ttfs_ce"],
        doc="Spike-count targets (surrogate) or TTFS cross-entropy (exact)",
    )
    y_true = Count(10, bounds=(0, 1000), doc="Spike-count target of the label neuron")
    y_false = Count(0, bounds=(0, 1000), doc="Spike-count target of the other neurons")
    tau_l = _positive(0.1, (0, 100.0), (1e-3, 1.0), "TTFS cross-entropy temperature τ_L [s]")
    predict = param.Selector(
        default="reference",
        objects=["reference", "strict"],
        doc="Prediction ties/silence: class 0 (reference) or wrong (strict)",
    )
    optimizer = param.Selector(default="sgd", objects=["sgd", "adam"], doc="Optimiser")
    lr = _positive(0.1, (0, 100.0), (1e-5, 1.0), "Learning rate λ")
    lr_decay = Finite(
        1.0, bounds=(0, 1), inclusive_bounds=(False, True), doc="LR decay factor γ (1 = none)"
    )
    lr_every = Count(10, bounds=(1, 100_000), doc="Decay every this many epochs")
    lr_floor = Finite(0.0, bounds=(0, 100.0), doc="Smallest learning rate λ_min")
    batch_size = Count(50, bounds=(1, 4096), doc="Batch size (toy tasks: full batch)")
    epochs = Count(50, bounds=(1, 100_000), doc="Epochs")
    n_train = Count(1000, bounds=(10, 60_000), doc="Training samples used (image tasks)")
    val_fraction = Finite(0.1, bounds=(0, 0.5), doc="Share of training samples held out")
    seed = Count(0, bounds=(0, 2**31 - 1), doc="Random seed (init, shuffling)")
    backend = param.Selector(default="cpu", objects=["cpu"], doc="Compute backend")
    dtype = param.Selector(default="float64", objects=["float64", "float32"], doc="Precision")

    FIELDS = (
        "task",
        "data",
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
        """The fields as a dict; ``data`` only when it is "full", so a sample run's config is
        the one written before the choice existed (stored run folders still resume)."""
        d = {k: getattr(self, k) for k in self.FIELDS}
        if d["data"] == "sample":
            del d["data"]
        return d

    def set_from_dict(self, d: dict) -> None:
        """Apply the fields of ``d`` after checking all of them (nothing changes on error)."""
        if isinstance(d, dict) and d.get("backend") not in (None, *self.param.backend.objects):
            d = {**d, "backend": "cpu"}  # a config made on a GPU machine still loads here
        self.param.update(**_checked_fields(self, d, "training"))


class SweepConfig(param.Parameterized):
    """The convergence sweep grid (docs/training.md §4), at most :data:`MAX_SWEEP_RUNS` runs."""

    variant = param.Selector(default="multi", objects=["multi", "single"])
    mu_max = Finite(2.4, bounds=(0, 10))
    sigma_max = Finite(2.4, bounds=(0, 10))
    step = Finite(0.2, bounds=(0.05, 1.0), doc="Grid spacing Δ")
    repeats = Count(100, bounds=(1, 1000))
    epochs = Count(50, bounds=(1, 1000))
    seed = Count(0, bounds=(0, 2**31 - 1))
    predict = param.Selector(default="reference", objects=["reference", "strict"])

    def __init__(self, **params):
        super().__init__(**params)
        check_sweep_runs(self.runs)
        self.param.watch(self._bounded_runs, ["mu_max", "sigma_max", "step", "repeats"])

    @property
    def runs(self) -> int:
        """Independent networks the sweep trains: grid cells × repeats."""
        return sweep_runs(self.mu_max, self.sigma_max, self.step, self.repeats)

    def _bounded_runs(self, event):
        _refuse_over(self, event, self.runs, MAX_SWEEP_RUNS, "sweep runs (cells × repeats)")


def grid_axis(maximum: float, step: float) -> np.ndarray:
    """0, step, 2·step, … ≤ maximum (docs/training.md §4: ``arange(0, 2.5, 0.2)`` for 2.4 / 0.2)."""
    n = int(np.floor(maximum / step + 1e-9)) + 1
    return np.round(np.arange(n) * step, 10)


def sweep_runs(mu_max: float, sigma_max: float, step: float, repeats: int) -> int:
    """Grid cells × repeats of a sweep over ``[0, mu_max] × [0, sigma_max]`` at ``step``."""
    cells = (math.floor(mu_max / step + 1e-9) + 1) * (math.floor(sigma_max / step + 1e-9) + 1)
    return cells * repeats


def check_sweep_runs(runs: int) -> None:
    """ValueError when a sweep would train more than :data:`MAX_SWEEP_RUNS` networks."""
    if runs > MAX_SWEEP_RUNS:
        raise ValueError(f"sweep: {runs} runs (cells × repeats); at most {MAX_SWEEP_RUNS}")


def check_total_neurons(sizes) -> None:
    """ValueError when the layers hold more than :data:`MAX_NEURONS` neurons together."""
    total = sum(sizes)
    if total > MAX_NEURONS:
        raise ValueError(
            f"network.layers: {total} neurons in all; at most {MAX_NEURONS} are allowed"
        )


def refuse_unknown(d: dict, known, where: str) -> None:
    """ValueError naming (shortened) the first keys of ``d`` that are not in ``known``."""
    unknown = [k for k in d if k not in known]
    if unknown:
        names = ", ".join(repr(str(k)[:40]) for k in unknown[:5])
        raise ValueError(f"{where}: unknown field(s) {names}")


def _checked_fields(owner, d, where: str) -> dict:
    """``d``'s fields validated one by one against ``owner``'s params (class or instance).

    Unknown fields and the first invalid value raise ``ValueError`` naming ``where.<field>``
    and the bound; nothing is set here, so a caller can apply the result all at once.
    """
    if not isinstance(d, dict):
        raise ValueError(f"{where}: must be an object, not {type(d).__name__}")
    refuse_unknown(d, owner.FIELDS, where)
    for name, value in d.items():
        try:
            owner.param[name]._validate(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{where}.{name}: {exc}") from None
    return dict(d)


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
    if training.task not in IMAGE_TASKS and network.has_image_layers:
        msgs.append(
            f"Task '{training.task}' has a flat input: conv and pool layers need an image "
            f"task ({', '.join(IMAGE_TASKS)})."
        )
    if out.kind != "dense":
        msgs.append("The output layer must be a dense layer (one neuron per class).")
    elif out.size != n_classes:
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
        if spec.kind != "pool" and spec.init == "uniform" and spec.init_low > spec.init_high:
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
    scratch_net, scratch_cfg = scratch_config(d)
    network.set_layers(scratch_net.layers)
    training.param.update(**{k: getattr(scratch_cfg, k) for k in TrainingConfig.FIELDS})


def scratch_config(d: dict) -> tuple[NetworkSpec, TrainingConfig]:
    """``d`` (a run configuration) checked field by field into new state objects."""
    if not isinstance(d, dict):
        raise ValueError("a run configuration must be a JSON object")
    refuse_unknown(d, ("version", "network", "training"), "config")
    if d.get("version", CONFIG_VERSION) != CONFIG_VERSION:
        raise ValueError(f"config.version: only version {CONFIG_VERSION} is supported")
    if not isinstance(d.get("network"), dict) or not isinstance(d.get("training"), dict):
        raise ValueError("a run configuration needs 'network' and 'training' objects")
    scratch_net, scratch_cfg = NetworkSpec(), TrainingConfig()
    scratch_net.set_from_dict(d["network"])
    scratch_cfg.set_from_dict(d["training"])
    if scratch_net.has_image_layers and scratch_cfg.task not in IMAGE_TASKS:
        raise ValueError(
            f"network.layers: conv and pool layers need an image task, not "
            f"'{scratch_cfg.task}' (a flat input)"
        )
    return scratch_net, scratch_cfg
