"""Downloads and uploads: run config (JSON), model (zip of the engine's .npz + .json), metrics CSV.

Every reader validates fully before anything is applied and raises ``ValueError`` with a message
fit for the UI; nothing is unpickled (``np.load(..., allow_pickle=False)`` inside the engine).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

from batscope.engine.network import Network

from .state import LayerSpec

MAX_UPLOAD = 64 * 2**20  # bytes
MODEL_MEMBERS = ("model.npz", "model.json")


def config_bytes(config: dict) -> bytes:
    return json.dumps(config, indent=2, sort_keys=True).encode()


def parse_config(data: bytes) -> dict:
    """A run configuration from uploaded JSON bytes (ValueError if unreadable)."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValueError("the file is empty")
    if len(data) > MAX_UPLOAD:
        raise ValueError("the file is too large for a configuration")
    try:
        d = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a JSON file ({exc})") from None
    if not isinstance(d, dict):
        raise ValueError("a run configuration must be a JSON object")
    return d


def model_bytes(network: Network) -> bytes:
    """A zip holding ``model.npz`` (weights) and ``model.json`` (config) from ``Network.save``."""
    with tempfile.TemporaryDirectory() as tmp:
        network.save(Path(tmp) / "model")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name in MODEL_MEMBERS:
                z.write(Path(tmp) / name, name)
    return buf.getvalue()


def parse_model(data: bytes) -> Network:
    """The Network stored in an uploaded model zip (ValueError naming the problem)."""
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise ValueError("the file is empty")
    if len(data) > MAX_UPLOAD:
        raise ValueError(f"the file is larger than {MAX_UPLOAD // 2**20} MiB")
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
            names = set(z.namelist())
            if not set(MODEL_MEMBERS) <= names:
                raise ValueError(f"a model zip must contain {' and '.join(MODEL_MEMBERS)}")
            with tempfile.TemporaryDirectory() as tmp:
                for name in MODEL_MEMBERS:
                    info = z.getinfo(name)
                    if info.file_size > MAX_UPLOAD:
                        raise ValueError(f"{name} is too large")
                    (Path(tmp) / name).write_bytes(z.read(name))
                try:
                    return Network.load(Path(tmp) / "model")
                except ValueError as exc:  # name the member, not the temporary folder
                    raise ValueError(str(exc).replace(f"{tmp}/", "")) from None
    except zipfile.BadZipFile:
        raise ValueError("not a model zip (download one with 'Download model')") from None
    except (OSError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable model file ({exc})") from None


def layer_specs(network: Network) -> list[LayerSpec]:
    """The builder's LayerSpecs for an engine network's layers."""
    specs = []
    for layer in network.layers:
        init = layer.init.to_dict()
        d = {
            "size": layer.n,
            "tau_s": layer.tau_s,
            "theta": layer.theta,
            "reset": layer.reset,
            "n_max": layer.n_max,
            "init": init["kind"],
        }
        d.update({f"init_{k}": v for k, v in init.items() if k != "kind"})
        specs.append(LayerSpec.from_dict(d))
    return specs


def metrics_csv(rows) -> str:
    """The metric rows as CSV (one line per row, all splits)."""
    out = io.StringIO()
    out.write("step,epoch,split,loss,accuracy,lr,samples_per_s\n")
    for r in rows:
        out.write(
            f"{r.step},{r.epoch},{r.split},{r.loss!r},{r.accuracy!r},{r.lr!r},{r.samples_per_s!r}\n"
        )
    return out.getvalue()
