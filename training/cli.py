"""``batscope train``: a paper experiment or a configuration saved from the app, into run folders.

``batscope train NAME [--epochs N] [--seeds S ...] [--backend cpu|gpu] [--dtype float32|float64]
[--data-dir DIR] [--out DIR] [--resume]`` or ``batscope train --config FILE.json``. One run folder
per seed: ``OUT/NAME/seed-S`` (see ``training.runfolder``). Exit status 0 when every run ended,
2 when the command or the configuration is refused (nothing is written then), 3 when a run ended
in a collapse that no remedy cured.

``python -m batscope.training.cli train ...`` runs the same command without importing Panel or
Bokeh (a GPU machine with NumPy, Numba, param, tqdm and CuPy needs nothing else).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from .cli_args import add_epochs_and_data_dir, add_run_parser, read_config_file
from .data import DataMissing
from .experiments import TITLES, experiment_config
from .health import collapsed
from .remedies import REMEDIES
from .runconfig import validate_run_config
from .runfolder import RunFolderError
from .runner import RunSession
from .state import EVENT_TASKS

REFUSED, COLLAPSED = 2, 3


def add_train_parser(sub) -> argparse.ArgumentParser:
    """Register ``train`` on an ``add_subparsers`` object; returns its parser."""
    p = add_run_parser(
        sub,
        "train",
        "train a paper experiment or a saved configuration into run folders",
        __doc__.split("\n\n")[0],
    )
    add_epochs_and_data_dir(p)
    p.add_argument("--seeds", type=int, nargs="+", help="one run per seed (default: the config's)")
    p.add_argument("--backend", choices=["cpu", "gpu"], help="compute backend")
    p.add_argument("--dtype", choices=["float32", "float64"], help="precision")
    p.add_argument("--data", choices=["sample", "full"], help="embedded sample or full dataset")
    p.add_argument(
        "--download", action="store_true", help="download a missing dataset once (checked)"
    )
    p.add_argument(
        "--no-verify",
        action="store_true",
        help="train on local dataset files no pinned hash vouches for (recorded in config.json)",
    )
    p.add_argument(
        "--val",
        type=int,
        metavar="N",
        help="full datasets: training images held out for validation (default 5000); 0 trains "
        "on all of them, as the authors' scripts do, and the best checkpoint is then chosen on "
        "the training accuracy",
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="where run folders go")
    p.add_argument("--resume", action="store_true", help="continue the runs in --out")
    p.add_argument(
        "--remedy",
        action="append",
        default=[],
        choices=sorted(REMEDIES),
        help="a remedy beyond the paper (repeatable): "
        + "; ".join(f"{k}: {v}" for k, v in REMEDIES.items()),
    )
    return p


def _base_config(args) -> tuple[str, dict]:
    if args.config is not None:
        d = read_config_file(args.config)
        if d.get("format") == "batscope-preset":  # a preset file holds its config inside
            d = d.get("config")
        return args.config.stem, d
    return args.name, experiment_config(args.name)


def run_configs(args) -> list[tuple[str, dict]]:
    """``(run folder, validated config)`` per seed; ValueError naming the problem."""
    name, base = _base_config(args)
    if not isinstance(base, dict):
        raise ValueError("a run configuration must be a JSON object")
    base = copy.deepcopy(base)
    tr = base.get("training")
    if not isinstance(tr, dict):
        raise ValueError("a run configuration needs 'network' and 'training' objects")
    for key in ("epochs", "backend", "dtype"):
        if getattr(args, key) is not None:
            tr[key] = getattr(args, key)
    run = base.setdefault("run", {})
    if not isinstance(run, dict):
        raise ValueError("run must be a JSON object")
    if args.data is not None:  # the flag wins over an app config's own choice
        run["data"] = args.data
        tr.pop("data", None)
    if args.val is not None:
        if run.get("data", "sample") != "full" or tr.get("task") in EVENT_TASKS:
            raise ValueError(
                "--val holds out images of a full image dataset (MNIST, Fashion-MNIST, EMNIST); "
                "this run does not train on one (pass --data full for the embedded tasks)"
            )
        run["n_val"] = args.val
    if args.remedy:
        run["remedies"] = sorted(set(args.remedy))
    if args.no_verify:
        run["verify"] = False
    seeds = args.seeds if args.seeds is not None else [tr.get("seed", 0)]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds must be distinct, got {seeds}")
    out = []
    for seed in seeds:
        cfg = copy.deepcopy(base)
        cfg["training"]["seed"] = seed
        out.append((str(args.out / name / f"seed-{seed}"), validate_run_config(cfg)))
    return out


def train_command(args) -> int:
    try:
        runs = run_configs(args)
    except ValueError as exc:
        print(f"batscope train: refused: {exc}", file=sys.stderr)
        return REFUSED
    title = TITLES.get(args.name or "", f"configuration {args.config}")
    first = runs[0][1]
    if (
        args.data_dir is not None
        and first["run"]["data"] == "sample"
        and first["training"]["task"] != "emnist"
    ):  # EMNIST has no embedded sample: its files are read from --data-dir
        print(
            "batscope train: note: the run trains on the embedded sample (run.data 'sample'), so "
            "--data-dir is not read; pass --data full to train on the files there",
            file=sys.stderr,
        )
    print(f"{title}: {len(runs)} run(s) into {args.out}", file=sys.stderr)
    status = 0
    for i, (folder, config) in enumerate(runs):
        session = RunSession(config, Path(folder), data_dir=args.data_dir, download=args.download)
        try:
            trainer = session.prepare(args.resume)
        except (DataMissing, RunFolderError, ValueError) as exc:
            print(f"batscope train: refused: {exc}", file=sys.stderr)
            return REFUSED
        seed = config["training"]["seed"]
        summary = session.run(trainer, position=f"seed {seed} ({i + 1}/{len(runs)}) ")
        print(json.dumps(summary), flush=True)
        print(_summary_line(summary), file=sys.stderr)
        if summary["alerts"]:
            print(
                f"batscope train: {folder}: {summary['alerts']} alert(s), see events.jsonl; the "
                f"best checkpoint (epoch {summary['best']['epoch']}) is in best_model.*",
                file=sys.stderr,
            )
        if _ended_collapsed(session):
            status = COLLAPSED
    return status


def _summary_line(summary: dict) -> str:
    final = ", ".join(f"{s} {100 * a:.2f} %" for s, a in summary["final"].items())
    best = summary["best"]
    line = f"{summary['run']}: final (epoch {summary['epochs']}) {final}"
    if best["epoch"] >= 0:
        line += f"; best on {best['split']}: epoch {best['epoch']}, {100 * best['accuracy']:.2f} %"
        if best.get("test_accuracy") is not None:
            line += f" (test {100 * best['test_accuracy']:.2f} %)"
    return line


def _ended_collapsed(session: RunSession) -> bool:
    sel = session.last.get(session.selection)
    return sel is not None and collapsed(sel, session.best["accuracy"])


def main(argv=None) -> int:
    """``train`` alone, as ``batscope train`` runs it, for machines without the app's packages."""
    parser = argparse.ArgumentParser(prog="python -m batscope.training.cli")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    return train_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
