"""What ``batscope train`` and ``batscope sweep`` share on the command line: the choice of an
experiment NAME or a ``--config`` file, ``--epochs``, ``--data-dir``, and reading that file."""

from __future__ import annotations

import argparse
from pathlib import Path

from .experiments import EXPERIMENTS
from .limits import parse_json


def add_run_parser(sub, command: str, help_text: str, description: str) -> argparse.ArgumentParser:
    """Register ``command`` on an ``add_subparsers`` object with the required choice of a paper
    experiment NAME or ``--config FILE``; returns its parser."""
    p = sub.add_parser(command, help=help_text, description=description)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("name", nargs="?", choices=list(EXPERIMENTS), help="paper experiment")
    what.add_argument("--config", type=Path, help="a run configuration saved from the app (JSON)")
    return p


def add_epochs_and_data_dir(p: argparse.ArgumentParser) -> None:
    """``--epochs N`` and ``--data-dir DIR`` on parser ``p``."""
    p.add_argument("--epochs", type=int, help="epochs (default: the experiment's)")
    p.add_argument("--data-dir", type=Path, help="folder holding the dataset's official files")


def read_config_file(path: Path) -> dict:
    """The parsed JSON of a ``--config`` file (size and depth checked by ``parse_json``);
    ValueError naming the file when it cannot be read or parsed."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"--config {path}: {exc.strerror or exc}") from None
    return parse_json(data, f"--config {path.name}")
