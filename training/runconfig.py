"""A command-line run configuration: the app's run config plus its ``"run"`` object, validated.

The network and training parts go through the app's own checks (``limits.validate_config`` and
``state.check_config``), so a configuration saved from the app and one of the paper's experiments
are refused for the same reasons with the same messages.
"""

from __future__ import annotations

from batscope.engine.backend import available_backends

from .augmentation import AUGMENTATIONS
from .limits import validate_config
from .remedies import REMEDIES
from .state import DATA_CHOICES, IMAGE_TASKS, check_config, scratch_config

RUN_FIELDS = ("data", "n_val", "experiment", "remedies", "verify", "augment")


def _run_part(d) -> dict:
    if d is None:
        return {"data": "sample"}
    if not isinstance(d, dict):
        raise ValueError("run must be a JSON object")
    unknown = set(d) - set(RUN_FIELDS)
    if unknown:
        raise ValueError(f"run: unknown field(s) {sorted(unknown)}")
    run = {"data": d.get("data", "sample")}
    if run["data"] not in DATA_CHOICES:
        raise ValueError(f"run.data must be one of {DATA_CHOICES}, got {run['data']!r}")
    if "n_val" in d:
        n_val = d["n_val"]
        if isinstance(n_val, bool) or not isinstance(n_val, int) or n_val < 0:
            raise ValueError(f"run.n_val must be an integer >= 0, got {n_val!r}")
        run["n_val"] = n_val
    if "verify" in d:
        if not isinstance(d["verify"], bool):
            raise ValueError(f"run.verify must be true or false, got {d['verify']!r}")
        if not d["verify"]:
            run["verify"] = False
    if "augment" in d:
        if d["augment"] not in AUGMENTATIONS:
            raise ValueError(f"run.augment must be one of {AUGMENTATIONS}, got {d['augment']!r}")
        run["augment"] = d["augment"]
    if "experiment" in d:
        run["experiment"] = str(d["experiment"])
    remedies = d.get("remedies", [])
    if not isinstance(remedies, list) or any(r not in REMEDIES for r in remedies):
        raise ValueError(f"run.remedies must be a list of {sorted(REMEDIES)}, got {remedies!r}")
    if remedies:
        run["remedies"] = sorted(set(remedies))
    return run


def validate_run_config(d) -> dict:
    """The normalised configuration; ValueError naming the field and the bound otherwise."""
    if not isinstance(d, dict):
        raise ValueError("a run configuration must be a JSON object")
    run = _run_part(d.get("run"))
    tr = d.get("training")
    backend = tr.get("backend", "cpu") if isinstance(tr, dict) else "cpu"
    if backend not in available_backends():
        raise ValueError(
            f"training.backend {backend!r} is not usable here (available: "
            f"{', '.join(available_backends())})"
        )
    config = _checked(d)
    if config["training"].pop("data", "sample") == "full":  # the app's choice (state.py)
        run["data"] = "full"
    task = config["training"]["task"]
    if "augment" in run and task not in IMAGE_TASKS:
        raise ValueError(f"run.augment distorts images: task {task!r} has none")
    return {**config, "run": run}


def _checked(d: dict) -> dict:
    """The network and training parts through the app's schema and cross-field checks."""
    config = validate_config({k: v for k, v in d.items() if k != "run"})
    problems = check_config(*scratch_config(config))
    if problems:
        raise ValueError(" ".join(problems))
    return config
