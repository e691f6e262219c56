"""A run folder: everything one training run (one seed) leaves behind, never overwritten silently.

- ``config.json``: the run configuration; ``environment.json``: versions and machine;
- ``metrics.csv``: one row per evaluation (``epoch, split, loss, accuracy, ...``; ``split`` is
  train, val or test; epoch 0 is before training). The train row is the mean over the epoch's
  batches, or, for a task without a validation split, an evaluation of the training set after
  the epoch (the split the best checkpoint is chosen on then);
- ``steps.csv``: one row per training batch; ``evaluations.jsonl``: every evaluation in full
  (sparsity per layer, latency curve, health), for views and reports;
- ``events.jsonl``: alerts and remedies; ``checkpoints/``: ``last`` and ``best`` (by validation);
- ``model.npz`` + ``model.json`` (the final network, ``Network.load``), ``best_model.*`` and
  ``summary.json`` once the run ends.

The logs are appended and flushed; each checkpoint records their sizes, and ``--resume`` cuts them
back to those sizes before it continues, so rows of an interrupted epoch are recomputed, not
doubled.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

from batscope.engine.io import atomic_write_bytes

from .evaluation import Evaluation
from .telemetry import MetricRow

METRICS_HEADER = (
    "epoch,split,loss,accuracy,step,lr,silent_outputs,silent_sample_fraction,dead_fraction\n"
)
STEPS_HEADER = "step,epoch,loss,accuracy,lr,samples_per_s,silent_fraction\n"
LOGS = {
    "metrics.csv": METRICS_HEADER,
    "steps.csv": STEPS_HEADER,
    "evaluations.jsonl": "",
    "events.jsonl": "",
}


class RunFolderError(RuntimeError):
    """The folder cannot be used as asked (the message says why and what to do)."""


def environment() -> dict:
    """Versions and machine, recorded beside every run."""
    versions = {"python": sys.version.split()[0]}
    for pkg in ("batscope", "numpy", "numba", "cupy-cuda12x", "cupy-cuda13x"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return {
        "versions": versions,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }


def _json_text(d) -> bytes:
    return (json.dumps(d, indent=2, sort_keys=True) + "\n").encode()


class RunFolder:
    """``open`` it for a new run or to resume one, then append rows and write checkpoints."""

    def __init__(self, path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"

    def open(self, config: dict, resume: bool) -> None:
        """Create the folder, or check it belongs to ``config`` when resuming."""
        cfg = self.path / "config.json"
        if self.path.exists() and any(self.path.iterdir()):
            if not resume:
                raise RunFolderError(
                    f"{self.path} already holds a run: pass --resume to continue it, or choose "
                    "another --out folder (nothing was changed)"
                )
            try:
                stored = json.loads(cfg.read_text())
            except (OSError, ValueError) as exc:
                raise RunFolderError(f"{cfg}: cannot resume, unreadable ({exc})") from None
            if stored != config:
                diff = sorted(_differences(stored, config))
                raise RunFolderError(
                    f"{self.path} holds a run with another configuration ({', '.join(diff)} "
                    "differ): resume it with the same options, or choose another --out folder"
                )
            return
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(cfg, _json_text(config))
        atomic_write_bytes(self.path / "environment.json", _json_text(environment()))
        self.cut({})

    def sizes(self) -> dict[str, int]:
        return {name: (self.path / name).stat().st_size for name in LOGS}

    def cut(self, sizes: dict[str, int]) -> None:
        """Cut every log back to ``sizes`` (a missing entry: back to its header)."""
        for name, header in LOGS.items():
            p = self.path / name
            keep = sizes.get(name, len(header))
            if name not in sizes or not p.exists():
                p.write_text(header)
            elif p.stat().st_size < keep:
                raise RunFolderError(f"{p} is shorter than its checkpoint records: cannot resume")
            else:
                with open(p, "r+b") as f:
                    f.truncate(keep)

    def _append(self, name: str, text: str) -> None:
        with open(self.path / name, "a") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    def add_steps(self, rows: list[MetricRow]) -> None:
        self._append(
            "steps.csv",
            "".join(
                f"{r.step},{r.epoch},{r.loss!r},{r.accuracy!r},{r.lr!r},{r.samples_per_s!r},"
                f"{r.silent_fraction!r}\n"
                for r in rows
            ),
        )

    def add_evaluation(self, row: MetricRow, ev: Evaluation | None) -> None:
        """One metrics.csv row (train rows have no health) and, with ``ev``, its full record."""
        if ev is None:
            health = ",,"
        else:
            h = ev.health
            dead = ";".join(f"{d!r}" for d in h.dead_fraction)
            silent = ";".join(str(j) for j in h.silent_outputs)
            health = f"{silent},{h.silent_sample_fraction!r},{dead}"
        self._append(
            "metrics.csv",
            f"{row.epoch},{row.split},{row.loss!r},{row.accuracy!r},{row.step},{row.lr!r},"
            f"{health}\n",
        )
        if ev is not None:
            record = {
                "epoch": row.epoch,
                "split": row.split,
                "loss": row.loss,
                "accuracy": row.accuracy,
                "health": ev.health.to_dict(),
                "sparsity": [
                    {
                        "name": s.name,
                        "spikes_per_sample": s.spikes_per_sample,
                        "active_fraction": s.active_fraction,
                        "dead_fraction": s.dead_fraction,
                        "saturated_fraction": s.saturated_fraction,
                        "spikes_per_neuron": s.spikes_per_neuron.tolist(),
                    }
                    for s in ev.sparsity
                ],
                "latency": {
                    "t": ev.latency.t.tolist(),
                    "accuracy": ev.latency.accuracy.tolist(),
                    "t_enc": ev.latency.t_enc,
                },
            }
            self._append("evaluations.jsonl", json.dumps(record, allow_nan=True) + "\n")

    def add_event(self, epoch: int, kind: str, message: str, **extra) -> None:
        event = {"epoch": epoch, "kind": kind, "message": message, **extra}
        self._append("events.jsonl", json.dumps(event) + "\n")

    def write_json(self, name: str, d: dict) -> None:
        atomic_write_bytes(self.path / name, _json_text(d))


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        name = f"{prefix}{key}"
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _differences(va, vb, name + ".")
        elif va != vb:
            out.append(name)
    return out
