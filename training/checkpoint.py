"""Checkpoints of a Trainer: weights, optimiser state, λ, epoch, RNG state, config
(docs/training.md §2).

Pickle-free: the arrays go to ``<name>-e<epoch>.npz`` (loaded with ``allow_pickle=False``) and
everything else to ``<name>.json``, which names its npz. Both are written atomically and the JSON
last, so the JSON is the commit point: a run killed at any moment leaves either the previous
checkpoint or the new one, never a mix. The batch order is a pure function of (seed, epoch)
(``datasets.batching.epoch_permutation``), so the epoch and the seed are the whole RNG state of a
run once its weights are drawn.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
from batscope.engine.backend import to_numpy
from batscope.engine.io import atomic_write_bytes

FORMAT = "batscope-checkpoint"
VERSION = 1


def trainer_state(trainer) -> tuple[dict[str, np.ndarray], dict]:
    """``(arrays, meta)`` of a Trainer at an epoch end (``batch == 0``)."""
    if trainer.batch != 0:
        raise ValueError("a checkpoint is taken at an epoch end (batch 0)")
    arrays = {f"w{k}": to_numpy(w).copy() for k, w in enumerate(trainer.network.weights)}
    opt = trainer.optimizer.state_dict()
    scalars = {}
    for key, value in opt.items():
        if isinstance(value, np.ndarray):
            arrays[f"opt.{key}"] = value
        else:
            scalars[key] = value
    meta = {
        "epoch": trainer.epoch,
        "step": trainer.step_count,
        "lr": trainer.optimizer.lr,
        "lr_scale": trainer.lr_scale,
        "optimizer": scalars,
        "rng": {"seed": trainer.seed, "epoch": trainer.epoch, "batch_order": "(seed, epoch)"},
        "config": trainer.config,
    }
    return arrays, meta


def restore_trainer(trainer, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Put a Trainer in the state :func:`trainer_state` recorded (validated by the engine)."""
    if meta.get("config") != trainer.config:
        raise ValueError("the checkpoint was taken with another configuration")
    n = len(trainer.network.weights)  # layers with weights (not pool)
    weights = [arrays[f"w{k}"] for k in range(n)]
    opt = dict(meta["optimizer"])
    opt.update({k[4:]: v for k, v in arrays.items() if k.startswith("opt.")})
    trainer.optimizer.load_state_dict(opt)
    trainer.network.weights = [trainer.xp.asarray(w) for w in weights]
    trainer.epoch = int(meta["epoch"])
    trainer.step_count = int(meta["step"])
    trainer.batch = 0
    trainer.lr_scale = float(meta["lr_scale"])
    trainer.optimizer.lr = float(meta["lr"])


def write_checkpoint(folder: Path, name: str, arrays: dict, meta: dict) -> None:
    """Atomically write ``folder/<name>.json`` and the npz it names, then drop stale npz files."""
    folder.mkdir(parents=True, exist_ok=True)
    npz = f"{name}-e{int(meta['epoch']):05d}.npz"
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(folder / npz, buf.getvalue())
    doc = {"format": FORMAT, "version": VERSION, "arrays": npz, **meta}
    atomic_write_bytes(folder / f"{name}.json", json.dumps(doc, indent=1, sort_keys=True).encode())
    for old in folder.glob(f"{name}-e*.npz"):
        if old.name != npz:
            old.unlink()


def read_checkpoint(folder: Path, name: str) -> tuple[dict, dict] | None:
    """``(arrays, meta)`` of ``folder/<name>.json``, None if absent; ValueError if unreadable."""
    file = folder / f"{name}.json"
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{file}: not a readable checkpoint ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{file}: not a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise ValueError(f"{file}: unsupported checkpoint version {meta.get('version')!r}")
    npz = folder / str(meta["arrays"])
    if npz.parent != folder:
        raise ValueError(f"{file}: its arrays must lie beside it")
    try:
        with np.load(npz, allow_pickle=False) as z:
            arrays = {k: np.array(z[k]) for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{npz}: not a readable checkpoint array file ({exc})") from None
    return arrays, meta
