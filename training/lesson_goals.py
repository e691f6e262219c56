"""A lesson step's goal: typed goal kinds checked against a plain snapshot of the session
(no Panel).

The app gathers what it already knows into a :class:`LessonSnapshot` (the configuration the last
run was started with, the run's metrics, the convergence sweep's cells, the toy editor's output,
the gradient check's and the precision comparison's results, the tabs looked at) and each goal
reads only that snapshot, so every goal can be tested without a browser and without the app.
Goal files are untrusted: :func:`goal_from_dict` refuses an unknown kind, field or value naming
the field path and the bound (docs/lessons.md §3).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from .state import LayerSpec, TrainingConfig

SPLITS = ("train", "val", "test")
VARIANTS = ("single", "multi")


@dataclass(frozen=True)
class LessonSnapshot:
    """What the goals of a step may look at (plain values; ``None``: not done yet)."""

    run_config: dict | None = None  # the configuration of the last run started
    best_accuracy: dict = field(default_factory=dict)  # split -> best accuracy of that run, %
    epochs_done: int = 0  # epochs the last run completed
    reset_share: float = math.nan  # Σ|μ| / (Σ|φ| + Σ|μ|) of the latest error flow
    latency_at_t_enc: float = math.nan  # accuracy (%) at the end of the encoding window
    sweep: dict = field(default_factory=dict)  # variant -> {(μ, σ): accuracy %}
    sweep_complete: frozenset = frozenset()  # variants whose grid is complete
    selected_cell: tuple | None = None  # (μ, σ) of the drilled-into convergence cell
    editor: dict | None = None  # {"counts", "inputs", "n_max"} of the toy editor
    gradcheck: dict | None = None  # {"passed", "compared", "nonzero"} of the last check
    precision: dict | None = None  # {"dt", "count_mismatch", "max_abs_error"}
    tabs_seen: frozenset = frozenset()  # tab ids shown during this step


def _config_value(config: dict | None, path: str):
    """``network.layers.0.init_mean`` or ``training.lr`` read from a run configuration."""
    node = config
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


@dataclass(frozen=True)
class Bound:
    """``min ≤ value ≤ max`` on one field of a run configuration (either side optional)."""

    path: str
    min: float | None = None
    max: float | None = None

    def holds(self, config: dict | None) -> bool:
        v = _config_value(config, self.path)
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            return False
        return (self.min is None or v >= self.min) and (self.max is None or v <= self.max)

    def text(self) -> str:
        name = self.path.rsplit(".", 1)[-1]
        if self.min is not None and self.max is not None:
            return f"{self.min:g} ≤ {name} ≤ {self.max:g}"
        return f"{name} ≥ {self.min:g}" if self.min is not None else f"{name} ≤ {self.max:g}"


def _where_holds(where: tuple[Bound, ...], config: dict | None) -> bool:
    return all(b.holds(config) for b in where)


def _where_text(where: tuple[Bound, ...]) -> str:
    return f" with {', '.join(b.text() for b in where)}" if where else ""


def _between(value, low, high) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return (low is None or value >= low) and (high is None or value <= high)


@dataclass(frozen=True)
class TabGoal:
    """Look at a tab."""

    tab: str
    kind = "tab"

    def met(self, s: LessonSnapshot) -> bool:
        return self.tab in s.tabs_seen

    def text(self) -> str:
        return f"open the {self.tab} tab"


@dataclass(frozen=True)
class AccuracyGoal:
    """A run reaches ``at_least`` % accuracy on ``split`` with its configuration in bounds."""

    split: str
    at_least: float
    where: tuple[Bound, ...] = ()
    kind = "accuracy"

    def met(self, s: LessonSnapshot) -> bool:
        acc = s.best_accuracy.get(self.split)
        return (
            acc is not None
            and acc >= self.at_least - 1e-9
            and _where_holds(self.where, s.run_config)
        )

    def text(self) -> str:
        return f"reach {self.at_least:g} % {self.split} accuracy{_where_text(self.where)}"


@dataclass(frozen=True)
class TrainedGoal:
    """A run completes ``epochs_at_least`` epochs with its configuration in bounds."""

    epochs_at_least: int
    where: tuple[Bound, ...] = ()
    kind = "trained"

    def met(self, s: LessonSnapshot) -> bool:
        return s.epochs_done >= self.epochs_at_least and _where_holds(self.where, s.run_config)

    def text(self) -> str:
        return f"train for {self.epochs_at_least} epoch(s){_where_text(self.where)}"


@dataclass(frozen=True)
class ResetShareGoal:
    """The reset path's share of the error (docs/backward.md §7) in bounds, after a run."""

    at_least: float | None = None
    at_most: float | None = None
    where: tuple[Bound, ...] = ()
    kind = "reset_share"

    def met(self, s: LessonSnapshot) -> bool:
        return _between(s.reset_share, self.at_least, self.at_most) and _where_holds(
            self.where, s.run_config
        )

    def text(self) -> str:
        bound = Bound("share", self.at_least, self.at_most).text()
        return f"train until the reset path's error {bound}{_where_text(self.where)}"


@dataclass(frozen=True)
class LatencyGoal:
    """The trained net's accuracy at the end of the encoding window is ``at_least`` %."""

    at_least: float
    kind = "latency"

    def met(self, s: LessonSnapshot) -> bool:
        return _between(s.latency_at_t_enc, self.at_least, None)

    def text(self) -> str:
        return f"reach {self.at_least:g} % accuracy by the end of the encoding window"


@dataclass(frozen=True)
class SweepDoneGoal:
    """The convergence sweep has computed every cell of these variants."""

    variants: tuple[str, ...] = VARIANTS
    kind = "sweep_done"

    def met(self, s: LessonSnapshot) -> bool:
        return set(self.variants) <= set(s.sweep_complete)

    def text(self) -> str:
        return f"run the convergence sweep ({' and '.join(self.variants)}-spike)"


@dataclass(frozen=True)
class SweepCellGoal:
    """The cell drilled into: single-spike ≤ ``single_at_most`` %, multi ≥ ``multi_at_least`` %."""

    single_at_most: float
    multi_at_least: float
    kind = "sweep_cell"

    def met(self, s: LessonSnapshot) -> bool:
        if s.selected_cell is None:
            return False
        single = s.sweep.get("single", {}).get(s.selected_cell)
        multi = s.sweep.get("multi", {}).get(s.selected_cell)
        return _between(single, None, self.single_at_most) and _between(
            multi, self.multi_at_least, None
        )

    def text(self) -> str:
        return (
            f"tap a cell where single-spike stays ≤ {self.single_at_most:g} % and multi-spike "
            f"reaches ≥ {self.multi_at_least:g} %"
        )


@dataclass(frozen=True)
class EditorGoal:
    """The toy editor's output neuron ``neuron`` fires ``count_min``..``count_max`` times, with
    ``inputs_min``..``inputs_max`` input spikes and an output buffer S in bounds."""

    neuron: int = 0
    count_min: int | None = None
    count_max: int | None = None
    inputs_min: int | None = None
    inputs_max: int | None = None
    n_max_min: int | None = None
    n_max_max: int | None = None
    kind = "editor"

    def met(self, s: LessonSnapshot) -> bool:
        e = s.editor
        if e is None or self.neuron >= len(e["counts"]):
            return False
        return (
            _between(e["counts"][self.neuron], self.count_min, self.count_max)
            and _between(e["inputs"], self.inputs_min, self.inputs_max)
            and _between(e["n_max"], self.n_max_min, self.n_max_max)
        )

    def text(self) -> str:
        lo, hi = self.count_min, self.count_max
        fires = "stays silent" if hi == 0 else f"fires {_range(lo, hi, 'time(s)')}"
        text = f"in the toy editor, output neuron {self.neuron} {fires}"
        if self.inputs_min is not None or self.inputs_max is not None:
            text += f" with {_range(self.inputs_min, self.inputs_max, 'input spike(s)')}"
        if self.n_max_min is not None or self.n_max_max is not None:
            text += f" and a buffer S of {_range(self.n_max_min, self.n_max_max, '')}".rstrip()
        return text


def _range(lo, hi, unit: str) -> str:
    """ "exactly 2 time(s)", "at least 1 input spike(s)", "4 to 5 …", "at most 1"."""
    if lo is not None and lo == hi:
        text = f"exactly {lo}"
    elif lo is not None and hi is not None:
        text = f"{lo} to {hi}"
    else:
        text = f"at least {lo}" if lo is not None else f"at most {hi}"
    return f"{text} {unit}"


@dataclass(frozen=True)
class GradcheckGoal:
    """The last gradient check agreed on at least ``compared_at_least`` weights (``nonzero``:
    and some exact gradient was not 0)."""

    compared_at_least: int = 1
    nonzero: bool = True
    kind = "gradcheck"

    def met(self, s: LessonSnapshot) -> bool:
        g = s.gradcheck
        return (
            g is not None
            and g["passed"]
            and g["compared"] >= self.compared_at_least
            and (g["nonzero"] or not self.nonzero)
        )

    def text(self) -> str:
        return f"run a gradient check that agrees on ≥ {self.compared_at_least} weight(s)"


@dataclass(frozen=True)
class PrecisionGoal:
    """The last precision comparison, at its chosen dt, has counts and errors in bounds."""

    dt_min: float | None = None
    dt_max: float | None = None
    mismatch_min: int | None = None
    mismatch_max: int | None = None
    error_min: float | None = None
    error_max: float | None = None
    kind = "precision"

    def met(self, s: LessonSnapshot) -> bool:
        p = s.precision
        return (
            p is not None
            and _between(p["dt"], self.dt_min, self.dt_max)
            and _between(p["count_mismatch"], self.mismatch_min, self.mismatch_max)
            and (
                (self.error_min is None and self.error_max is None)
                or _between(p["max_abs_error"], self.error_min, self.error_max)
            )
        )

    def text(self) -> str:
        parts = ["compare exact and clock spikes"]
        if self.dt_min is not None or self.dt_max is not None:
            parts.append("at " + Bound("dt [s]", self.dt_min, self.dt_max).text())
        if self.mismatch_min is not None or self.mismatch_max is not None:
            wrong = Bound("wrong counts", self.mismatch_min, self.mismatch_max)
            parts.append("with " + wrong.text())
        if self.error_min is not None or self.error_max is not None:
            parts.append("and " + Bound("max |Δt| [s]", self.error_min, self.error_max).text())
        return " ".join(parts)


# kind -> (class, {field: (type, low, high)}, required fields); "where" is a list of bounds
_INT, _NUM, _BOOL, _STR = "integer", "number", "boolean", "string"
KINDS = {
    "tab": (TabGoal, {"tab": (_STR, None, None)}, ("tab",)),
    "accuracy": (
        AccuracyGoal,
        {"split": (_STR, None, None), "at_least": (_NUM, 0, 100)},
        ("split", "at_least"),
    ),
    "trained": (TrainedGoal, {"epochs_at_least": (_INT, 1, 10_000)}, ("epochs_at_least",)),
    "reset_share": (ResetShareGoal, {"at_least": (_NUM, 0, 1), "at_most": (_NUM, 0, 1)}, ()),
    "latency": (LatencyGoal, {"at_least": (_NUM, 0, 100)}, ("at_least",)),
    "sweep_done": (SweepDoneGoal, {"variants": ("variants", None, None)}, ()),
    "sweep_cell": (
        SweepCellGoal,
        {"single_at_most": (_NUM, 0, 100), "multi_at_least": (_NUM, 0, 100)},
        ("single_at_most", "multi_at_least"),
    ),
    "editor": (
        EditorGoal,
        {
            "neuron": (_INT, 0, 63),
            "count_min": (_INT, 0, 1000),
            "count_max": (_INT, 0, 1000),
            "inputs_min": (_INT, 0, 400),
            "inputs_max": (_INT, 0, 400),
            "n_max_min": (_INT, 1, 1000),
            "n_max_max": (_INT, 1, 1000),
        },
        (),
    ),
    "gradcheck": (
        GradcheckGoal,
        {"compared_at_least": (_INT, 1, 64), "nonzero": (_BOOL, None, None)},
        (),
    ),
    "precision": (
        PrecisionGoal,
        {
            "dt_min": (_NUM, 0, 1),
            "dt_max": (_NUM, 0, 1),
            "mismatch_min": (_INT, 0, 100_000),
            "mismatch_max": (_INT, 0, 100_000),
            "error_min": (_NUM, 0, 100),
            "error_max": (_NUM, 0, 100),
        },
        (),
    ),
}
HAS_WHERE = ("accuracy", "trained", "reset_share")
#: configuration fields a goal's ``where`` may bound (numeric fields only)
WHERE_FIELDS = {f"training.{f}" for f in TrainingConfig.FIELDS} | {
    f"network.layers.{{i}}.{f}" for f in LayerSpec.NEURON_FIELDS
}


def _typed(value, kind: str, low, high, path: str):
    if kind == _STR:
        if not isinstance(value, str) or not value or len(value) > 60:
            raise ValueError(f"{path}: must be a text of 1 to 60 characters")
        return value
    if kind == _BOOL:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: must be true or false")
        return value
    if kind == "variants":
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v in VARIANTS for v in value)
        ):
            raise ValueError(f"{path}: must be a non-empty list of {list(VARIANTS)}")
        return tuple(dict.fromkeys(value))
    ok = isinstance(value, numbers.Integral if kind == _INT else numbers.Real)
    if isinstance(value, bool) or not ok or not math.isfinite(value):
        raise ValueError(f"{path}: must be {'an integer' if kind == _INT else 'a finite number'}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{path}: {value!r} is outside [{low}, {high}]")
    return value


def _where(value, path: str) -> tuple[Bound, ...]:
    if not isinstance(value, dict) or len(value) > 8:
        raise ValueError(f"{path}: must be an object of at most 8 fields")
    bounds = []
    for key, rng in value.items():
        general = ".".join("{i}" if p.isdigit() else p for p in str(key).split("."))
        if general not in WHERE_FIELDS or (general != key and int(key.split(".")[2]) > 16):
            raise ValueError(
                f"{path}.{key}: not a configuration field (e.g. training.lr, "
                "network.layers.0.init_mean)"
            )
        if not isinstance(rng, dict) or not rng or set(rng) - {"min", "max"}:
            raise ValueError(f'{path}.{key}: must be {{"min": …, "max": …}} (either or both)')
        lo, hi = (
            None if rng.get(k) is None else _typed(rng[k], _NUM, None, None, f"{path}.{key}.{k}")
            for k in ("min", "max")
        )
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"{path}.{key}: min {lo} is above max {hi}")
        bounds.append(Bound(key, lo, hi))
    return tuple(bounds)


def goal_from_dict(d, path: str = "goal", tabs=()):
    """A goal from its file form ``{"kind": ..., ...}``; ``ValueError`` naming the field path
    and the bound otherwise. ``tabs`` lists the tab ids a ``tab`` goal may name."""
    if not isinstance(d, dict):
        raise ValueError(f"{path}: must be an object with a 'kind'")
    kind = d.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{path}.kind: must be one of {sorted(KINDS)}, not {str(kind)[:40]!r}")
    cls, fields, required = KINDS[kind]
    allowed = set(fields) | {"kind"} | ({"where"} if kind in HAS_WHERE else set())
    for key in d:
        if key not in allowed:
            raise ValueError(f"{path}.{str(key)[:40]}: unknown field for kind {kind!r}")
    for key in required:
        if key not in d:
            raise ValueError(f"{path}.{key}: required for kind {kind!r}")
    values = {k: _typed(d[k], *fields[k], f"{path}.{k}") for k in fields if k in d}
    if "where" in d:
        values["where"] = _where(d["where"], f"{path}.where")
    if kind == "accuracy" and values["split"] not in SPLITS:
        raise ValueError(f"{path}.split: must be one of {list(SPLITS)}")
    need = {"reset_share": ("at_least", "at_most"), "editor": ("count_min", "count_max")}
    if kind in need and not any(k in values for k in need[kind]):
        raise ValueError(f"{path}: kind {kind!r} needs {' or '.join(need[kind])}")
    if kind == "tab" and tabs and values["tab"] not in tabs:
        raise ValueError(f"{path}.tab: must be one of {list(tabs)}")
    for low, high in (
        ("count_min", "count_max"),
        ("inputs_min", "inputs_max"),
        ("n_max_min", "n_max_max"),
        ("at_least", "at_most"),
        ("dt_min", "dt_max"),
        ("mismatch_min", "mismatch_max"),
        ("error_min", "error_max"),
    ):
        if low in values and high in values and values[low] > values[high]:
            raise ValueError(f"{path}.{low}: {values[low]} is above {high} {values[high]}")
    return cls(**values)
