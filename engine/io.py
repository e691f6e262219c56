"""Saving and loading networks: ``<stem>.npz`` weights + ``<stem>.json`` config, no pickle."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .layers import conv_output_shape, pool_output_shape
from .spikes import resolve_dtype


def _stem(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    p = Path(path)
    return p.with_suffix("") if p.suffix in (".npz", ".json") else p


def atomic_write_bytes(target: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then ``os.replace`` it onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_network(net, path) -> None:
    stem = _stem(path)
    import io as _io

    buf = _io.BytesIO()
    np.savez(buf, **{f"w{k}": to_numpy(w) for k, w in enumerate(net.weights)})
    atomic_write_bytes(stem.with_suffix(".npz"), buf.getvalue())
    text = json.dumps(net.config(), indent=2, sort_keys=True)
    atomic_write_bytes(stem.with_suffix(".json"), text.encode())


def _data_size(shape, dtype: np.dtype) -> int:
    return int(np.prod(shape, dtype=object)) * dtype.itemsize


def _member_header(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple, np.dtype]:
    """Shape and dtype of a ``.npy`` member from its zip and ``.npy`` headers only (a few hundred
    bytes decompressed); its declared size must equal the header's plus the data's."""
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"{info.filename} uses an unsupported compression")
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{info.filename}: unsupported .npy version {version}")
        header = f.tell()
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"{info.filename} holds {dtype}, expected float32 or float64")
    if header + _data_size(shape, dtype) != info.file_size:
        raise ValueError(
            f"{info.filename}: its zip header declares {info.file_size} bytes, its .npy header "
            f"{header + _data_size(shape, dtype)} (shape {shape}, {dtype})"
        )
    return tuple(shape), dtype


def read_weights(path, shapes, max_bytes: int | None = None) -> list[np.ndarray]:
    """The weight arrays of ``<stem>.npz``, checked against ``shapes``; ValueError otherwise.

    Every member's shape, dtype and declared size are checked from its zip and ``.npy`` headers
    before any data is decompressed (a small file that inflates to gigabytes is refused unread);
    ``max_bytes`` bounds the data's total size. Loaded with ``allow_pickle=False``.
    """
    file = _stem(path).with_suffix(".npz")
    expected = [f"w{k}" for k in range(len(shapes))]
    try:
        with zipfile.ZipFile(file) as z:
            infos = {info.filename: info for info in z.infolist()}
            names = sorted(name.removesuffix(".npy") for name in infos)
            if sorted(expected) != names or len(infos) != len(expected):
                raise ValueError(f"{file}: holds arrays {names}, expected {expected}")
            members = [infos[f"{name}.npy"] for name in expected]
            total = 0
            for k, (info, shape) in enumerate(zip(members, shapes, strict=True)):
                found, dtype = _member_header(z, info)
                if found != tuple(shape):
                    raise ValueError(
                        f"{file}: w{k} has shape {found}, the network expects {tuple(shape)}"
                    )
                total += _data_size(found, dtype)
            if max_bytes is not None and total > max_bytes:
                raise ValueError(f"{file}: the weights need {total} bytes, more than {max_bytes}")
            arrays = []
            for info in members:
                with z.open(info) as f:
                    arrays.append(np.lib.format.read_array(f, allow_pickle=False))
    except FileNotFoundError:
        raise
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if msg.startswith(str(file)) else f"{file}: {msg}") from None
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, SyntaxError) as exc:
        raise ValueError(f"{file}: not a readable weight file ({exc})") from None
    for k, a in enumerate(arrays):
        if not np.isfinite(a).all():
            raise ValueError(f"{file}: w{k} must hold finite floats")
    return arrays


MAX_CONFIG_BYTES = 2**20  # a network config is a few hundred bytes per layer
MAX_JSON_DEPTH = 16  # the config nests 4 levels (config, layers, layer, init)
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def parse_json(text: str, depth: int = MAX_JSON_DEPTH):
    """``json.loads`` that refuses nesting deeper than ``depth`` (checked on the text first, so a
    deep document never reaches the recursive parser) and non-finite numbers (``NaN``,
    ``Infinity``, or a literal such as ``1e400`` that overflows). ValueError otherwise."""
    level = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            level += 1
            if level > depth:
                raise ValueError(f"the JSON is nested deeper than {depth} levels")
        elif token in "]}":
            level -= 1

    def finite(token: str) -> float:
        value = float(token)
        if not math.isfinite(value):
            raise ValueError(f"non-finite number {token} in the JSON (only finite numbers)")
        return value

    def constant(token: str):
        raise ValueError(f"non-finite number {token} in the JSON (only finite numbers)")

    try:
        return json.loads(text, parse_float=finite, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None


def _size(key: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def _weight_shapes(config: dict) -> list[tuple]:
    """The weight shape of every layer with weights, from the config's size fields alone
    (each checked, before anything is built); shapes flow from the input as in Network."""
    n_inputs = _size("n_inputs", config.get("n_inputs"))
    shape = (n_inputs,)
    if "input_shape" in config:
        dims = config["input_shape"]
        if not isinstance(dims, list) or len(dims) != 3:
            raise ValueError(f"input_shape must be a list [H, W, C], got {dims!r}")
        shape = tuple(_size(f"input_shape[{a}]", v) for a, v in enumerate(dims))
        if math.prod(shape) != n_inputs:
            raise ValueError(f"input_shape {dims} does not hold n_inputs={n_inputs} neurons")
    shapes = []
    for k, layer in enumerate(config["layers"]):
        d = layer if isinstance(layer, dict) else {}
        kind = d.get("kind", "dense")
        if kind == "dense":
            n = _size(f"layers[{k}].n", d.get("n"))
            shapes.append((n, math.prod(shape)))
            shape = (n,)
        elif kind == "conv2d":
            c = _size(f"layers[{k}].channels", d.get("channels"))
            ks = _size(f"layers[{k}].kernel_size", d.get("kernel_size"))
            out = _geometry(k, conv_output_shape, shape, c, ks)
            shapes.append((c, ks, ks, shape[2]))
            shape = out
        elif kind == "pool2d":
            size = _size(f"layers[{k}].size", d.get("size"))
            shape = _geometry(k, pool_output_shape, shape, size)
        else:
            kinds = "'dense', 'conv2d' or 'pool2d'"
            raise ValueError(f"layers[{k}].kind must be {kinds}, got {kind!r}")
    return shapes


def _geometry(k: int, output_shape, shape, *args) -> tuple:
    try:
        return output_shape(shape, *args)
    except ValueError as exc:
        raise ValueError(f"layers[{k}]: {exc}") from None


def load_network(
    cls,
    path,
    backend="cpu",
    max_layers: int | None = None,
    max_weights: int | None = None,
    max_bytes: int | None = None,
):
    """The network saved at ``path``, every size checked before anything is allocated.

    The JSON config (at most :data:`MAX_CONFIG_BYTES`, parsed by :func:`parse_json`) is checked
    against the limits (number of layers, number of weights, bytes of the weights in the
    network's dtype or the file's), then the weight file's headers against the config, and only
    then are the weights decompressed and the network built. ValueError naming the file, the
    field and the bound otherwise.
    """
    stem = _stem(path)
    file = stem.with_suffix(".json")
    try:
        size = file.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ValueError(f"{size} bytes, more than a config's {MAX_CONFIG_BYTES}")
        config = parse_json(file.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{file}: not a readable network config ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != "batscope-network":
        raise ValueError(f"{file}: not a batscope-network file")
    if not isinstance(config.get("layers"), list) or not config["layers"]:
        raise ValueError(f"{file}: 'layers' must be a non-empty list")
    n_layers = len(config["layers"])
    if max_layers is not None and n_layers > max_layers:
        raise ValueError(f"{file}: {n_layers} layers, more than max_layers={max_layers}")
    try:
        shapes = _weight_shapes(config)
        itemsize = resolve_dtype(config.get("dtype", "float64")).itemsize
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file}: {exc}") from None
    n_weights = sum(math.prod(s) for s in shapes)
    if max_weights is not None and n_weights > max_weights:
        raise ValueError(f"{file}: {n_weights} weights, more than max_weights={max_weights}")
    need = n_weights * itemsize
    if max_bytes is not None and need > max_bytes:
        raise ValueError(f"{file}: the weights need {need} bytes, more than max_bytes={max_bytes}")
    weights = read_weights(stem, shapes, max_bytes=max_bytes)
    try:
        net = cls.from_config(config, backend=backend)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file}: {exc}") from exc
    net.weights = weights
    return net
