"""Downloads and uploads: run config (JSON), model (zip of the engine's .npz + .json), metrics CSV.

Every reader validates fully before anything is applied or allocated and raises ``ValueError``
with a message naming the field and the bound (the schema of ``training/state.py``, the size limits
of ``training/limits.py``); nothing is unpickled (``np.load(..., allow_pickle=False)`` inside the
engine) and no weight is decompressed before its header matches the network.
"""

from __future__ import annotations

import io
import json
import math
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from batscope.engine.network import Network
from batscope.engine.nir import require_nir

from .limits import (
    MAX_CONFIG_BYTES,
    MAX_MODEL_BYTES,
    MAX_WEIGHT_BYTES,
    parse_json,
    validate_config,
)
from .state import (
    IMAGE_SHAPE,
    MAX_LAYERS,
    LayerSpec,
    check_total_neurons,
    layer_neurons,
    layer_weights,
    refuse_unknown,
)

MODEL_MEMBERS = ("model.npz", "model.json")
MODEL_FORMAT = "batscope-network"
MODEL_FIELDS = {"format", "version", "n_inputs", "input_shape", "layers", "dtype", "seed"}
DTYPES = ("float32", "float64")
#: an engine layer's fields (``Dense.to_dict``) -> LayerSpec fields
LAYER_FIELDS = {"n": "size", "tau_s": "tau_s", "theta": "theta", "reset": "reset", "n_max": "n_max"}
#: the engine's layer kinds (engine/layers.py) -> LayerSpec kind and its own fields
ENGINE_KINDS = {
    "dense": ("dense", LAYER_FIELDS),
    "conv2d": (
        "conv",
        {
            "channels": "channels",
            "kernel_size": "kernel_size",
            **{k: v for k, v in LAYER_FIELDS.items() if k != "n"},
        },
    ),
    "pool2d": ("pool", {"size": "pool_size"}),
}
INIT_FIELDS = {"uniform": ("low", "high"), "normal": ("mean", "std")}
MAX_INPUTS = 4096  # inputs of an uploaded model (the image tasks have 784)


def config_bytes(config: dict) -> bytes:
    return json.dumps(config, indent=2, sort_keys=True).encode()


def nir_bytes(network: Network) -> bytes:
    """The network's NIR graph (engine/nir.py) as the bytes of a ``.nir`` file (``nir.write``);
    ``NIRExportError`` for a network NIR cannot hold, ``ImportError`` without the ``nir``
    package."""
    graph = network.to_nir()
    buf = io.BytesIO()
    require_nir().write(buf, graph)
    return buf.getvalue()


def parse_config(data: bytes) -> dict:
    """A run configuration from uploaded JSON bytes, checked against the whole schema.

    Size, UTF-8, nesting depth and finite numbers are checked before the JSON is parsed into
    objects; the result is :func:`batscope.training.limits.validate_config`'s normalised dict.
    """
    return validate_config(parse_json(data, "config"))


def model_bytes(network: Network) -> bytes:
    """A zip holding ``model.npz`` (weights) and ``model.json`` (config) from ``Network.save``."""
    with tempfile.TemporaryDirectory() as tmp:
        network.save(Path(tmp) / "model")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name in MODEL_MEMBERS:
                z.write(Path(tmp) / name, name)
    return buf.getvalue()


def model_layer_specs(config, n_inputs: int | None = None) -> list[LayerSpec]:
    """The builder's LayerSpecs for a model's ``model.json``, checked against the schema.

    Everything a network would allocate is checked here, before it is built: the number,
    size and geometry of the layers (a conv or pool layer needs the file's ``input_shape``,
    and in the app, whose image tasks are 28×28×1, that shape), the input count (``n_inputs``
    when given: the task's), the dtype and the weights' total size. A file written before
    conv layers existed (dense layers, no ``input_shape``) loads as it did.
    """
    if not isinstance(config, dict) or config.get("format") != MODEL_FORMAT:
        raise ValueError(f"model.json: not a {MODEL_FORMAT} file")
    refuse_unknown(config, MODEL_FIELDS, "model.json")
    n_in = config.get("n_inputs")
    if isinstance(n_in, bool) or not isinstance(n_in, int) or not 1 <= n_in <= MAX_INPUTS:
        raise ValueError(f"model.json.n_inputs: must be an integer from 1 to {MAX_INPUTS}")
    if n_inputs is not None and n_in != n_inputs:
        raise ValueError(
            f"model.json.n_inputs: the model has {n_in} inputs but the task gives {n_inputs}: "
            "choose a matching task first"
        )
    shape = _model_input_shape(config, n_in)
    if config.get("dtype", "float64") not in DTYPES:
        raise ValueError(f"model.json.dtype: must be one of {', '.join(DTYPES)}")
    layers = config.get("layers")
    if not isinstance(layers, list) or not 1 <= len(layers) <= MAX_LAYERS:
        raise ValueError(f"model.json.layers: must be a list of 1 to {MAX_LAYERS} layers")
    specs = [_layer_spec(x, f"model.json.layers[{i}]") for i, x in enumerate(layers)]
    if n_inputs is not None and len(shape) == 3 and shape != IMAGE_SHAPE:
        raise ValueError(
            f"model.json.input_shape: the app's image tasks are {list(IMAGE_SHAPE)}, "
            f"the model's is {list(shape)}"
        )
    try:
        check_total_neurons(layer_neurons(specs, shape))
    except ValueError as exc:
        raise ValueError(str(exc).replace("network.layers", "model.json.layers")) from None
    itemsize = np.dtype(config.get("dtype", "float64")).itemsize
    weight_bytes = itemsize * sum(layer_weights(specs, shape))
    if weight_bytes > MAX_WEIGHT_BYTES:
        raise ValueError(
            f"model.json: the weights would take {weight_bytes} bytes; at most "
            f"{MAX_WEIGHT_BYTES} bytes are allowed"
        )
    return specs


def _model_input_shape(config: dict, n_in: int) -> tuple:
    """``(n_in,)``, or the file's ``input_shape`` [H, W, C] holding ``n_in`` neurons."""
    dims = config.get("input_shape")
    if dims is None:
        return (n_in,)
    if (
        not isinstance(dims, list)
        or len(dims) != 3
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in dims)
        or math.prod(dims) != n_in
    ):
        raise ValueError(
            f"model.json.input_shape: must be [H, W, C] of positive integers holding the "
            f"{n_in} inputs"
        )
    return tuple(dims)


def _layer_spec(d, where: str) -> LayerSpec:
    """One engine layer dict (``Dense`` / ``Conv2D`` / ``Pool2D.to_dict``) as a LayerSpec, or
    ValueError naming it."""
    engine_kind = d.get("kind", "dense") if isinstance(d, dict) else None
    if not isinstance(engine_kind, str) or engine_kind not in ENGINE_KINDS:
        raise ValueError(f"{where}: must be a dense, conv2d or pool2d layer object")
    kind, names = ENGINE_KINDS[engine_kind]
    if kind == "pool":
        refuse_unknown(d, {"kind", *names}, where)
        return LayerSpec.from_dict(
            {"kind": kind, **{names[k]: v for k, v in d.items() if k in names}}, where
        )
    refuse_unknown(d, {"kind", "init", *names}, where)
    fields = {names[k]: v for k, v in d.items() if k in names}
    init = d.get("init", {"kind": "uniform", "low": -1.0, "high": 1.0})
    init_kind = init.get("kind") if isinstance(init, dict) else None
    if (
        not isinstance(init_kind, str)
        or init_kind not in INIT_FIELDS
        or set(init) != {"kind", *INIT_FIELDS[init_kind]}
    ):
        raise ValueError(f"{where}.init: must be a uniform (low, high) or normal (mean, std)")
    fields["kind"] = kind
    fields["init"] = init_kind
    fields.update({f"init_{k}": init[k] for k in INIT_FIELDS[init_kind]})
    return LayerSpec.from_dict(fields, where)


@dataclass(frozen=True)
class ModelUpload:
    """An uploaded model whose sizes and config passed the schema; nothing is built yet.

    Its layers are known (``specs``), so the memory of loading it can be reserved before
    :meth:`build` reads the weights.
    """

    n_inputs: int
    specs: list[LayerSpec]
    members: dict[str, bytes]

    def build(self) -> Network:
        """The Network; the engine checks the ``.npz`` members' headers (shape, dtype, declared
        sizes) against the config before any weight is decompressed."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in self.members.items():
                (Path(tmp) / name).write_bytes(data)
            try:
                return Network.load(
                    Path(tmp) / "model", max_layers=MAX_LAYERS, max_bytes=MAX_WEIGHT_BYTES
                )
            except (ValueError, TypeError, OSError) as exc:  # name the member, not the folder
                raise ValueError(str(exc).replace(f"{tmp}/", "")) from None


def read_model(data: bytes, n_inputs: int | None = None) -> ModelUpload:
    """An uploaded model zip, checked (sizes, then its config against the schema and the task's
    ``n_inputs``) without building anything; ValueError naming the problem."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValueError("the file is empty")
    if len(data) > MAX_MODEL_BYTES:
        raise ValueError(f"the file has {len(data)} bytes; at most {MAX_MODEL_BYTES} are allowed")
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
            if sorted(z.namelist()) != sorted(MODEL_MEMBERS):
                raise ValueError(f"a model zip must contain {' and '.join(MODEL_MEMBERS)} only")
            info = {name: z.getinfo(name) for name in MODEL_MEMBERS}
            if info["model.json"].file_size > MAX_CONFIG_BYTES:
                raise ValueError(f"model.json is larger than {MAX_CONFIG_BYTES} bytes")
            if info["model.npz"].file_size > MAX_WEIGHT_BYTES + 2**20:
                raise ValueError(f"model.npz is larger than {MAX_WEIGHT_BYTES} bytes")
            config = parse_json(z.read("model.json"), "model.json")
            specs = model_layer_specs(config, n_inputs)
            members = {name: z.read(name) for name in MODEL_MEMBERS}
    except zipfile.BadZipFile:
        raise ValueError("not a model zip (download one with 'Download model')") from None
    return ModelUpload(config["n_inputs"], specs, members)


def metrics_csv(rows) -> str:
    """The metric rows as CSV (one line per row, all splits)."""
    out = io.StringIO()
    out.write("step,epoch,split,loss,accuracy,lr,samples_per_s\n")
    for r in rows:
        out.write(
            f"{r.step},{r.epoch},{r.split},{r.loss!r},{r.accuracy!r},{r.lr!r},{r.samples_per_s!r}\n"
        )
    return out.getvalue()
