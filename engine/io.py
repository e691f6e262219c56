"""Saving and loading networks: ``<stem>.npz`` weights + ``<stem>.json`` config, no pickle."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .backend import to_numpy


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


def read_weights(path, shapes) -> list[np.ndarray]:
    """The weight arrays of ``<stem>.npz``, checked against ``shapes``; ValueError otherwise."""
    file = _stem(path).with_suffix(".npz")
    expected = [f"w{k}" for k in range(len(shapes))]
    try:
        with np.load(file, allow_pickle=False) as z:
            names = sorted(z.files)
            found = {name: np.array(z[name]) for name in expected if name in names}
    except FileNotFoundError:
        raise
    except (ValueError, zipfile.BadZipFile, OSError, EOFError, KeyError) as exc:
        raise ValueError(f"{file}: not a readable weight file ({exc})") from exc
    if sorted(expected) != names:
        raise ValueError(f"{file}: holds arrays {names}, expected {expected}")
    arrays = [found[name] for name in expected]
    for k, (a, shape) in enumerate(zip(arrays, shapes, strict=True)):
        if a.shape != tuple(shape):
            raise ValueError(f"{file}: w{k} has shape {a.shape}, the network expects {shape}")
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise ValueError(f"{file}: w{k} must hold finite floats")
    return arrays


def load_network(cls, path, backend="cpu"):
    stem = _stem(path)
    file = stem.with_suffix(".json")
    try:
        config = json.loads(file.read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a readable network config ({exc})") from exc
    if not isinstance(config, dict) or config.get("format") != "batscope-network":
        raise ValueError(f"{file}: not a batscope-network file")
    try:
        net = cls.from_config(config, backend=backend)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{file}: {exc}") from exc
    net.load_weights(stem)
    return net
