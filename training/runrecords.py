"""Reading what ``batscope train`` and ``batscope sweep`` left behind, for reports.

A sweep's ``summary.csv`` (``batscope sweep``: one row per run, with ``run``, ``status`` and
``error``) is read for the runs that failed, which the report lists; its run folders are read
like any other.
A *run folder* holds ``config.json`` and ``metrics.csv`` (see ``training.runfolder``); a *heatmap
folder* (a convergence sweep, paper Fig. 3) holds ``config.json`` and ``heatmap.csv`` in the
reference's format (``Mean,Std,Accuracy``, accuracy in percent, docs/training.md §4). The paths
given may be such folders or folders of them, at any depth. Nothing here raises on a bad folder:
each problem becomes a line saying which path and why, and the folder is left out.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .experiments import departures

METRIC_COLUMNS = ("epoch", "split", "accuracy")
SKIP_DIRS = {"checkpoints", "chunks"}


class RecordError(ValueError):
    """A folder's files cannot be read as a run (the message says which file and why)."""


@dataclass
class RunRecord:
    """One training run: its configuration, accuracy per split and epoch, and evaluations."""

    path: Path
    config: dict
    accuracy: dict[str, dict[int, float]]  # split -> epoch -> accuracy in [0, 1]
    evaluations: list[dict] = field(default_factory=list)

    @property
    def experiment(self) -> str:
        name = self.config.get("run", {}).get("experiment")
        return name if isinstance(name, str) and name else self.path.parent.name

    @property
    def seed(self):
        return self.config.get("training", {}).get("seed")

    @property
    def task(self) -> str:
        return str(self.config.get("training", {}).get("task", ""))

    @property
    def unverified(self) -> bool:
        """Trained on dataset files no pinned hash vouches for (``--no-verify``)."""
        return self.config.get("run", {}).get("verify", True) is False

    @property
    def remedies(self) -> list[str]:
        """The remedies beyond the paper the run used (none for the paper's presets)."""
        return sorted(map(str, self.config.get("run", {}).get("remedies", [])))

    @property
    def departures(self) -> list[str]:
        """Its settings other than its experiment's (the paper's), as ``field=value``."""
        return departures(self.config)

    @property
    def full_data(self) -> bool:
        return self.config.get("run", {}).get("data") == "full"

    @property
    def layers(self) -> list[dict]:
        return list(self.config.get("network", {}).get("layers", []))

    @property
    def single_spike(self) -> bool:
        """Every hidden layer fires at most once (S = 1): a TTFS net."""
        hidden = self.layers[:-1] or self.layers
        return bool(hidden) and all(d.get("n_max") == 1 for d in hidden)

    @property
    def last_epoch(self) -> int:
        return max((e for acc in self.accuracy.values() for e in acc), default=0)

    def last_evaluation(self, split: str = "test") -> dict | None:
        found = [e for e in self.evaluations if e.get("split") == split]
        return max(found, key=lambda e: e["epoch"]) if found else None


@dataclass
class HeatmapRecord:
    """One convergence heatmap: ``accuracy[σ index, μ index]`` in percent."""

    path: Path
    variant: str  # "single" or "multi"
    means: np.ndarray
    stds: np.ndarray
    accuracy: np.ndarray


def _read_json(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
    except OSError as exc:
        raise RecordError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise RecordError(f"{path}: a JSON object was expected")
    return d


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise RecordError(f"{where}: {text!r} is not a number") from None


def read_metrics(path: Path) -> dict[str, dict[int, float]]:
    """``split -> epoch -> accuracy`` from a ``metrics.csv`` (the last row of an epoch wins)."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
            header = rows[0].keys() if rows else []
    except OSError as exc:
        raise RecordError(f"{path}: unreadable ({exc.strerror or exc})") from None
    except csv.Error as exc:
        raise RecordError(f"{path}: not a CSV file ({exc})") from None
    if not rows:
        raise RecordError(f"{path}: no evaluation recorded yet")
    missing = [c for c in METRIC_COLUMNS if c not in header]
    if missing:
        raise RecordError(f"{path}: missing column(s) {', '.join(missing)}")
    out: dict[str, dict[int, float]] = {}
    for i, row in enumerate(rows, start=2):
        where = f"{path} line {i}"
        epoch = _number(row["epoch"], where)
        acc = _number(row["accuracy"], where)
        if not (epoch >= 0 and epoch == int(epoch)) or not (math.isfinite(acc) and 0 <= acc <= 1):
            raise RecordError(f"{where}: epoch must be an integer >= 0 and accuracy in [0, 1]")
        out.setdefault(str(row["split"]), {})[int(epoch)] = acc
    return out


def read_evaluations(path: Path) -> list[dict]:
    """The records of ``evaluations.jsonl`` (missing file: none; a bad line is an error)."""
    if not path.exists():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
        except ValueError as exc:
            raise RecordError(f"{path} line {i}: not valid JSON ({exc})") from None
        if not isinstance(d, dict) or "epoch" not in d or "split" not in d:
            raise RecordError(f"{path} line {i}: an evaluation needs 'epoch' and 'split'")
        out.append(d)
    return out


def read_heatmap_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(means, stds, accuracy[σ, μ])`` from the reference's ``Mean,Std,Accuracy`` CSV."""
    cells: dict[tuple[float, float], float] = {}
    try:
        with open(path, newline="") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header != ["Mean", "Std", "Accuracy"]:
                raise RecordError(f"{path}: header must be Mean,Std,Accuracy, got {header}")
            for i, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 3:
                    raise RecordError(f"{path} line {i}: three values expected")
                m, s, a = (_number(v, f"{path} line {i}") for v in row)
                cells[(m, s)] = a
    except OSError as exc:
        raise RecordError(f"{path}: unreadable ({exc.strerror or exc})") from None
    if not cells:
        raise RecordError(f"{path}: no cell")
    means = np.array(sorted({m for m, _ in cells}))
    stds = np.array(sorted({s for _, s in cells}))
    acc = np.full((len(stds), len(means)), np.nan)
    for (m, s), a in cells.items():
        acc[np.searchsorted(stds, s), np.searchsorted(means, m)] = a
    return means, stds, acc


def _variant(config: dict, path: Path) -> str:
    name = str(config.get("run", {}).get("experiment", "")) + " " + path.name
    return "single" if "single" in name else "multi"


def failed_sweep_runs(path: Path) -> list[str]:
    """One line per row of a sweep's ``summary.csv`` whose ``status`` is ``error``."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error) as exc:
        return [f"{path}: unreadable ({exc})"]
    out = []
    for i, row in enumerate(rows, start=2):
        if row.get("status") in ("error", "failed"):
            what = row.get("folder") or row.get("run") or f"line {i}"
            out.append(
                f"{path}: sweep run {what} failed: {row.get('error') or 'no error recorded'}"
            )
    return out


def read_folder(path: Path) -> RunRecord | HeatmapRecord:
    """The record of one run or heatmap folder; RecordError saying what is wrong."""
    config = _read_json(path / "config.json")
    if (path / "heatmap.csv").exists():
        return HeatmapRecord(path, _variant(config, path), *read_heatmap_csv(path / "heatmap.csv"))
    if not (path / "metrics.csv").exists():
        raise RecordError(f"{path}: config.json but no metrics.csv (a run that never started?)")
    return RunRecord(
        path,
        config,
        read_metrics(path / "metrics.csv"),
        read_evaluations(path / "evaluations.jsonl"),
    )


@dataclass
class Records:
    runs: list[RunRecord] = field(default_factory=list)
    heatmaps: list[HeatmapRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def find_records(paths) -> Records:
    """Every run and heatmap folder in ``paths`` (folders of folders too), and the problems."""
    found = Records()
    for root in map(Path, paths):
        if not root.exists():
            found.problems.append(f"{root}: no such file or folder")
            continue
        if not root.is_dir():
            found.problems.append(f"{root}: not a folder (give run folders or folders of them)")
            continue
        before = len(found.runs) + len(found.heatmaps) + len(found.problems)
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
            if "summary.csv" in files:
                found.problems += failed_sweep_runs(Path(folder) / "summary.csv")
            if "config.json" not in files:
                continue
            dirs[:] = []  # a run folder holds no further runs
            try:
                rec = read_folder(Path(folder))
            except RecordError as exc:
                found.problems.append(str(exc))
                continue
            (found.heatmaps if isinstance(rec, HeatmapRecord) else found.runs).append(rec)
        if len(found.runs) + len(found.heatmaps) + len(found.problems) == before:
            found.problems.append(f"{root}: no run folder found (none holds config.json)")
    return found
