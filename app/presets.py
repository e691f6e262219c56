"""Presets: a run configuration plus hidden controls and a lock flag (guided exercises).

Files live in ``app/presets/*.json`` (``format: batscope-preset``). ``hidden`` names
TrainingConfig fields and ``layer.<field>`` LayerSpec fields to leave out of the sidebar;
``locked`` freezes the network's structure (no add / remove / move).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from batscope.training.limits import validate_config
from batscope.training.state import (
    LayerSpec,
    NetworkSpec,
    TrainingConfig,
    apply_run_config,
    run_config,
)

PRESET_DIR = Path(__file__).with_name("presets")
FORMAT = "batscope-preset"
DEFAULT = "convergence"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    config: dict
    hidden: tuple[str, ...] = ()
    locked: bool = False
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": 1,
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "hidden": list(self.hidden),
            "locked": self.locked,
            "config": self.config,
        }


def _known_hidden() -> set[str]:
    return set(TrainingConfig.FIELDS) | {f"layer.{f}" for f in LayerSpec.FIELDS}


def preset_from_dict(d: dict) -> Preset:
    """Validate a preset dict (its config against the schema, normalised)."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"not a preset: 'format' must be {FORMAT!r}")
    for key in ("name", "title", "config"):
        if key not in d:
            raise ValueError(f"preset is missing {key!r}")
    hidden = tuple(d.get("hidden", ()))
    unknown = set(hidden) - _known_hidden()
    if unknown:
        raise ValueError(f"preset {d['name']!r}: unknown hidden control(s) {sorted(unknown)}")
    config = validate_config(d["config"])
    return Preset(
        str(d["name"]),
        str(d["title"]),
        str(d.get("description", "")),
        config,
        hidden,
        bool(d.get("locked", False)),
    )


@functools.cache
def _preset_names() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PRESET_DIR.glob("*.json")))


@functools.cache
def _validated_preset(name: str) -> Preset:
    """A preset file read and checked once per process (they ship with the package)."""
    return preset_from_dict(json.loads((PRESET_DIR / f"{name}.json").read_text("utf-8")))


def list_presets() -> list[str]:
    return list(_preset_names())


def load_preset(name: str) -> Preset:
    """The preset ``name``; its config is the caller's own copy (the checked file is shared)."""
    if name not in _preset_names():
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(list_presets())}")
    p = _validated_preset(name)
    return dataclasses.replace(p, config=copy.deepcopy(p.config), extra=dict(p.extra))


def apply_preset(preset: Preset, network: NetworkSpec, training: TrainingConfig) -> None:
    apply_run_config(preset.config, network, training)


def preset_of(
    name: str,
    title: str,
    network: NetworkSpec,
    training: TrainingConfig,
    description: str = "",
    hidden=(),
    locked: bool = False,
) -> Preset:
    """A preset from the current state (what 'save as preset' writes)."""
    return preset_from_dict(
        Preset(
            name, title, description, run_config(network, training), tuple(hidden), locked
        ).to_dict()
    )
