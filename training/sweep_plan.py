"""A sweep's plan: a grid of run-configuration values × seeds, every cell validated up front.

A cell is one training run (``batscope train``'s run configuration with one value per swept field
and one seed) or, for the convergence experiments, one Fig. 3 heatmap (docs/training.md §4) whose
grid is trained in chunks. Each cell's folder is named by a hash of its configuration, so the same
command finds the same folders again: finished cells are skipped, interrupted ones resumed.

``--set FIELD=V1,V2`` names a dotted path of the validated run configuration
(``training.lr``, ``network.layers.0.theta``, ``run.data``); each value is read as JSON (a number,
``true``, ``"text"``) or else taken as text. Every cell goes through ``validate_run_config`` before
anything is submitted, and a refusal names the field and the value.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path

from batscope.engine import convergence

from .experiments import experiment_config
from .runconfig import validate_run_config
from .state import SweepConfig as GridConfig
from .state import grid_axis

HEATMAP_EXPERIMENTS = {"convergence-multi": "multi", "convergence-single": "single"}
# fields a heatmap cell may sweep: its grid (``sweep.*``) and the training set-up the engine's
# batched sweep reads; its network is fixed by the task (docs/training.md §4)
HEATMAP_TRAINING = ("epochs", "lr", "predict", "backend", "dtype")
HEATMAP_GRID = ("mu_max", "sigma_max", "step", "repeats")
MAX_CELLS = 10_000
CHUNKS_PER_WORKER = 8  # heatmap chunks per worker by default: the last ones even out the load


@dataclass(frozen=True)
class Cell:
    """One run of the sweep: its folder name, swept values, seed and validated configuration."""

    key: str
    values: tuple  # ((field, value), ...) in the order of the sweep's fields
    seed: int
    config: dict


@dataclass(frozen=True)
class SweepPlan:
    """Everything ``run_plan`` submits; ``kind`` is ``"train"`` or ``"heatmap"``."""

    name: str
    kind: str
    out: Path
    fields: tuple[str, ...]
    cells: tuple[Cell, ...]
    data_dir: str | None = None
    chunk_cells: int | None = None  # heatmap cells per task; None: CHUNKS_PER_WORKER a worker


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` → 0, 1, 2, 3, 4; ``"0,3,7"`` and mixes (``"0-2,9"``); distinct, in order."""
    seeds: list[int] = []
    for part in str(text).split(","):
        lo, dash, hi = part.strip().partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if dash else [int(lo)]
        except ValueError:
            raise ValueError(f"--seeds: {text!r} is not like 0-4 or 0,3,7") from None
        if len(seeds) + len(span) > MAX_CELLS:  # before the list is made (the app's input)
            raise ValueError(f"--seeds: {text!r} names more than {MAX_CELLS} seeds")
        seeds += span
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds: {text!r} must name distinct seeds >= 0")
    return seeds


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_set(text: str) -> tuple[str, list]:
    """``"training.lr=0.001,0.003"`` → ``("training.lr", [0.001, 0.003])``."""
    field, eq, values = str(text).partition("=")
    field = field.strip()
    if not eq or not field or not values:
        raise ValueError(f"--set {text!r}: expected FIELD=V1,V2,...")
    vals = [_value(v.strip()) for v in values.split(",")]
    return field, vals


def _path(field: str) -> list:
    return [int(p) if p.isdigit() else p for p in field.split(".")]


def _set(config: dict, field: str, value) -> None:
    """Put ``value`` at the dotted ``field`` of ``config``, which must already hold it."""
    node = config
    parts = _path(field)
    for i, key in enumerate(parts):
        where = ".".join(str(p) for p in parts[: i + 1])
        ok = (isinstance(node, dict) and key in node) or (
            isinstance(node, list) and isinstance(key, int) and key < len(node)
        )
        if not ok:
            raise ValueError(f"--set {field}: the run configuration has no field {where}")
        if i == len(parts) - 1:
            node[key] = value
        else:
            node = node[key]


def config_hash(config: dict) -> str:
    """12 hex digits of the SHA-256 of the canonical JSON: the cell's identity."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _validate_heatmap(config: dict) -> dict:
    """A heatmap cell checked: the run config's schema, then the grid's bounds."""
    grid = config["sweep"]
    checked = validate_run_config({k: v for k, v in config.items() if k != "sweep"})
    tr = checked["training"]
    try:
        GridConfig(**grid, epochs=tr["epochs"], seed=tr["seed"], predict=tr["predict"])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"sweep: {exc}") from None
    return {**checked, "sweep": dict(grid)}


def engine_config(config: dict, variant: str) -> convergence.SweepConfig:
    """The engine's Fig. 3 configuration of a heatmap cell."""
    tr, grid = config["training"], config["sweep"]
    return convergence.SweepConfig(
        means=tuple(grid_axis(grid["mu_max"], grid["step"]).tolist()),
        stds=tuple(grid_axis(grid["sigma_max"], grid["step"]).tolist()),
        repeats=grid["repeats"],
        epochs=tr["epochs"],
        lr=tr["lr"],
        variant=variant,
        tie_mode=tr["predict"],
        seed=tr["seed"],
        backend=tr["backend"],
        dtype=tr["dtype"],
    )


def _base(name: str | None, config: dict | None) -> tuple[str, str, dict]:
    if (name is None) == (config is None):
        raise ValueError("give an experiment name or a configuration, not both")
    if config is not None:
        if not isinstance(config, dict):
            raise ValueError("a run configuration must be a JSON object")
        if config.get("format") == "batscope-preset":  # a preset file holds its config inside
            config = config.get("config")
        return "config", "train", validate_run_config(copy.deepcopy(config))
    base = experiment_config(name)
    if name in HEATMAP_EXPERIMENTS:
        g = GridConfig()
        base["sweep"] = {k: getattr(g, k) for k in HEATMAP_GRID}
        return name, "heatmap", _validate_heatmap(base)
    return name, "train", validate_run_config(base)


def plan_sweep(
    name: str | None = None,
    *,
    config: dict | None = None,
    out,
    seeds=None,
    grid: dict | None = None,
    epochs: int | None = None,
    data_dir=None,
    chunk_cells: int | None = None,
    backend: str | None = None,
) -> SweepPlan:
    """The cells of ``grid`` (``{field: [values]}``) × ``seeds`` for an experiment ``name`` or a
    run ``config``; ValueError naming the field and the value of the first refused cell."""
    label, kind, base = _base(name, config)
    for key, value in (("epochs", epochs), ("backend", backend)):
        if value is not None:
            base["training"][key] = value
    grid = dict(grid or {})
    for field, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"--set {field}: give at least one value")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise ValueError(f"--set {field}: values must be distinct, got {list(values)}")
        if field == "training.seed":
            raise ValueError("--set training.seed: sweep seeds with --seeds")
        if kind == "heatmap":
            section, _, key = field.partition(".")
            allowed = {"training": HEATMAP_TRAINING, "sweep": HEATMAP_GRID}.get(section, ())
            if key not in allowed:
                raise ValueError(
                    f"--set {field}: {label} trains the Fig. 3 grid with a fixed network; it "
                    f"sweeps training.{{{','.join(HEATMAP_TRAINING)}}} and "
                    f"sweep.{{{','.join(HEATMAP_GRID)}}}"
                )
        _set(copy.deepcopy(base), field, values[0])  # the field exists
    if chunk_cells is not None and (
        isinstance(chunk_cells, bool) or not isinstance(chunk_cells, int) or chunk_cells < 1
    ):
        raise ValueError(f"--chunk-cells must be an integer >= 1, got {chunk_cells!r}")
    seeds = list(seeds) if seeds is not None else [base["training"]["seed"]]
    fields = tuple(grid)
    combos = list(itertools.product(*grid.values()))
    if len(combos) * len(seeds) > MAX_CELLS:
        raise ValueError(f"the sweep has {len(combos) * len(seeds)} runs; at most {MAX_CELLS}")
    validate = _validate_heatmap if kind == "heatmap" else validate_run_config
    cells = []
    for combo in combos:
        for seed in seeds:
            cfg = copy.deepcopy(base)
            values = tuple(zip(fields, combo, strict=True))
            for field, value in values:
                _set(cfg, field, value)
            cfg["training"]["seed"] = seed
            try:
                cfg = validate(cfg)
            except ValueError as exc:
                where = ", ".join(f"{f}={v!r}" for f, v in values) or "the base"
                raise ValueError(f"--set {where} (seed {seed}): {exc}") from None
            key = f"{label}-s{seed}-{config_hash(cfg)}"
            cells.append(Cell(key, values, seed, cfg))
    return SweepPlan(
        label,
        kind,
        Path(out),
        fields,
        tuple(cells),
        None if data_dir is None else str(data_dir),
        chunk_cells,
    )
