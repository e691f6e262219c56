"""The run folders a server offers to open (``batscope serve --runs DIR``), and an opened run.

A participant picks a run by a name from :func:`list_runs`, built on the server from the folder
(never a path typed in a browser): :func:`open_run` looks the name up in that list, so nothing
outside the folder can be named (no ``..``, no absolute path, no symbolic link out of it).
Everything is read and checked before anything is applied: the configuration through the same
checks as ``batscope train --config`` (training/runconfig.py), the final model's weights from
``model.npz`` (``allow_pickle=False``, shapes checked against the configuration and sizes against
the upload limit before anything is decompressed: engine/io.py), and the record: ``metrics.csv``
(the curves) and ``evaluations.jsonl`` (sparsity per layer and the latency curve of each test
evaluation, training/runfolder.py). A bad or partial folder raises :class:`RunOpenError` saying
which file and why.
"""

from __future__ import annotations

import csv
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from batscope.datasets.sample import SAMPLE_NAMES
from batscope.engine.analysis import LatencyCurve
from batscope.engine.io import read_weights

from .limits import MAX_WEIGHT_BYTES, escape, parse_json
from .runconfig import validate_run_config
from .runrecords import RecordError, read_evaluations
from .state import CONFIG_VERSION, IMAGE_TASKS, TASKS, scratch_config, task_shape
from .telemetry import MetricRow, SparsityRow
from .trainer import build_network

REQUIRED = ("config.json", "metrics.csv", "model.json", "model.npz")
MAX_DEPTH = 3  # run folders are found this deep below the runs folder (experiment/seed/...)
MAX_RUNS = 500  # names listed (sorted); a larger folder is cut with a note
MAX_RECORD_BYTES = 64 * 2**20  # metrics.csv or evaluations.jsonl of one run


class RunOpenError(ValueError):
    """The run cannot be opened (the message says which file and why); nothing was applied."""


def _is_run(folder: Path) -> bool:
    return all((folder / f).is_file() and not (folder / f).is_symlink() for f in REQUIRED)


def list_runs(root) -> list[str]:
    """Names (``/``-separated paths below ``root``) of the finished run folders in ``root``:
    those holding ``config.json``, ``metrics.csv`` and the final model, at most
    :data:`MAX_DEPTH` deep, symbolic links not followed."""
    root = Path(root)
    if not root.is_dir():
        return []
    names = []
    for folder, dirs, _files in os.walk(root, followlinks=False):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not (here / d).is_symlink() and d != "checkpoints")
        if depth and _is_run(here):
            names.append(here.relative_to(root).as_posix())
            dirs[:] = []
        elif depth >= MAX_DEPTH:
            dirs[:] = []
    return sorted(names)[:MAX_RUNS]


@dataclass(frozen=True)
class OpenedRun:
    """A run folder read whole: the app's configuration, the final weights and the record."""

    name: str
    config: dict  # the app's run configuration (version, network, training)
    weights: list[np.ndarray]
    rows: tuple[MetricRow, ...]  # every evaluation and epoch row of metrics.csv
    sparsity_rows: tuple[SparsityRow, ...]  # per layer, from each test (else val) evaluation
    latency: LatencyCurve | None  # of the last test evaluation
    epochs: int  # the last epoch recorded


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RunOpenError(f"{path.name}: unreadable ({exc.strerror or exc})") from None
    if size > MAX_RECORD_BYTES:
        raise RunOpenError(f"{path.name}: larger than {MAX_RECORD_BYTES} bytes")


def _text(path: Path) -> str:
    _check_size(path)
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise RunOpenError(f"{path.name}: unreadable ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise RunOpenError(f"{path.name}: not UTF-8 text") from None


def _number(value, where: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise RunOpenError(f"{where}: {str(value)[:40]!r} is not a number") from None
    if math.isinf(x):
        raise RunOpenError(f"{where}: {x} is not finite")
    return x


def _app_config(path: Path) -> dict:
    """The app's run configuration of ``config.json`` (``training.data`` "full" for a run on
    the full dataset)."""
    try:
        d = parse_json(_text(path / "config.json"), "config.json")
        config = validate_run_config(d)
    except ValueError as exc:
        raise RunOpenError(f"config.json: {exc}") from None
    task = config["training"]["task"]
    if task not in TASKS:
        raise RunOpenError(
            f"config.json: task {escape(task)!r} is not one the app shows ({', '.join(TASKS)})"
        )
    training = dict(config["training"])
    if config["run"].get("data") == "full" and task in IMAGE_TASKS:
        training["data"] = "full"
    app = {"version": CONFIG_VERSION, "network": config["network"], "training": training}
    try:
        scratch_config(app)
    except ValueError as exc:
        raise RunOpenError(f"config.json: {exc}") from None
    return app


def _metric_rows(path: Path) -> tuple[tuple[MetricRow, ...], dict[tuple[int, str], int]]:
    """The rows of ``metrics.csv`` and the step of each ``(epoch, split)``."""
    lines = _text(path).splitlines()
    try:
        records = list(csv.DictReader(lines))
    except csv.Error as exc:
        raise RunOpenError(f"metrics.csv: not a CSV file ({exc})") from None
    if not records:
        raise RunOpenError("metrics.csv: no evaluation recorded")
    rows, steps = [], {}
    for i, r in enumerate(records, start=2):
        where = f"metrics.csv line {i}"
        split = r.get("split")
        if split not in ("train", "val", "test"):
            raise RunOpenError(f"{where}: split must be train, val or test")
        epoch, step = _number(r.get("epoch"), where), _number(r.get("step"), where)
        acc = _number(r.get("accuracy"), where)
        if not (epoch >= 0 and epoch == int(epoch) and step >= 0 and step == int(step)):
            raise RunOpenError(f"{where}: epoch and step must be integers >= 0")
        if not (math.isnan(acc) or 0 <= acc <= 1):
            raise RunOpenError(f"{where}: accuracy must be in [0, 1]")
        lr = _number(r.get("lr") or "nan", where)
        rows.append(MetricRow(int(step), int(epoch), split, _number(r.get("loss"), where), acc, lr))
        steps[(int(epoch), split)] = int(step)
    return tuple(rows), steps


def _fraction(d: dict, key: str, where: str) -> float:
    x = _number(d.get(key), f"{where}: {key}")
    if not (math.isnan(x) or 0 <= x <= 1):
        raise RunOpenError(f"{where}: {key} must be in [0, 1]")
    return x


def _record(path: Path, steps: dict) -> tuple[tuple[SparsityRow, ...], LatencyCurve | None]:
    """Sparsity rows of every test (else validation) evaluation, and the last latency curve."""
    file = path / "evaluations.jsonl"
    if file.exists():
        _check_size(file)  # refused when too large, before it is read
    try:
        evals = read_evaluations(file)
    except RecordError as exc:
        raise RunOpenError(str(exc).replace(str(path) + "/", "")) from None
    split = "test" if any(e["split"] == "test" for e in evals) else "val"
    evals = sorted((e for e in evals if e["split"] == split), key=lambda e: e["epoch"])
    rows = []
    for e in evals:
        where = f"evaluations.jsonl (epoch {e['epoch']})"
        epoch = _number(e["epoch"], where)
        layers = e.get("sparsity")
        if not isinstance(layers, list):
            raise RunOpenError(f"{where}: sparsity must be a list of layers")
        for s in layers:
            if not isinstance(s, dict):
                raise RunOpenError(f"{where}: a sparsity entry must be an object")
            rows.append(
                SparsityRow(
                    steps.get((int(epoch), split), int(epoch)),
                    epoch,
                    escape(s.get("name", "?"), 40),
                    _fraction(s, "dead_fraction", where),
                    _fraction(s, "active_fraction", where),
                    _fraction(s, "saturated_fraction", where),
                    _number(s.get("spikes_per_sample"), f"{where}: spikes_per_sample"),
                )
            )
    latency = None
    if evals and isinstance(evals[-1].get("latency"), dict):
        lat, where = evals[-1]["latency"], f"evaluations.jsonl (epoch {evals[-1]['epoch']})"
        try:
            t = np.asarray(lat["t"], dtype=np.float64)
            acc = np.asarray(lat["accuracy"], dtype=np.float64)
            t_enc = _number(lat["t_enc"], where)
        except (KeyError, TypeError, ValueError):
            raise RunOpenError(f"{where}: latency needs t, accuracy and t_enc") from None
        if t.ndim != 1 or t.shape != acc.shape or not np.isfinite(t).all():
            raise RunOpenError(f"{where}: latency t and accuracy must be lists of one length")
        latency = LatencyCurve(t, acc, t_enc, f"{split}, epoch {evals[-1]['epoch']} (record)")
    return tuple(rows), latency


def open_run(root, name: str, reserve=None) -> OpenedRun:
    """Read the run ``name`` (one of :func:`list_runs` ``(root)``) whole; RunOpenError if it is
    not one of them or any of its files is bad. ``reserve(n_inputs, layer_specs)``, if given, is
    entered around reading the weights (the session's memory budget: training/resources.py)."""
    if not isinstance(name, str) or name not in list_runs(root):
        raise RunOpenError(f"run {escape(name)!r}: not one of this server's runs")
    path = Path(root) / name
    config = _app_config(path)
    n_inputs = task_shape(config["training"]["task"])[0]
    guard = reserve(n_inputs, scratch_config(config)[0].layers) if reserve else nullcontext()
    with guard:
        net = build_network(config, n_inputs)
        try:
            weights = read_weights(path / "model", net.weight_shapes(), MAX_WEIGHT_BYTES)
        except ValueError as exc:
            raise RunOpenError(f"model.npz: {str(exc).replace(str(path) + '/', '')}") from None
    rows, steps = _metric_rows(path / "metrics.csv")
    sparsity, latency = _record(path, steps)
    return OpenedRun(
        name,
        config,
        weights,
        rows,
        sparsity,
        latency,
        max(r.epoch for r in rows),
    )


def explore_config(config: dict) -> tuple[dict, str]:
    """``(config, note)``: an opened run's configuration as the app explores it. A run trained on
    the full MNIST or Fashion-MNIST is shown on the embedded sample's test images (the app shows
    at most ``trainer.EVAL_CAP`` test samples either way, and the sample needs no files)."""
    tr = config["training"]
    if tr.get("data") != "full" or tr["task"] not in SAMPLE_NAMES:
        return config, ""
    sample = {k: v for k, v in tr.items() if k != "data"}
    note = (
        "Trained on the full dataset: its model is shown on the embedded sample's test images "
        "(choose data: full under Training for the official files)."
    )
    if tr["task"] == "fashion-mnist":
        note += " The Fashion-MNIST sample comes from an unofficial split: fine for a demo only."
    return {**config, "training": sample}, note
