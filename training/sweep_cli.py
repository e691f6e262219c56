"""``batscope sweep``: a grid of configurations × seeds as ``batscope train`` runs on Dask.

``batscope sweep NAME|--config FILE --out DIR [--seeds 0-4] [--set FIELD=V1,V2,...]...
[--epochs N] [--data-dir DIR] [--workers N | --scheduler ADDRESS] [--gpu] [--chunk-cells N]``.
DIR gets one run folder per cell (named by the hash of its configuration), ``sweep.json`` and
``summary.csv``. The same command again trains nothing that finished and resumes what did not.
Exit status 0 when every cell finished, 1 when some failed (their errors are in summary.csv), 2
when the command or a cell's configuration is refused (nothing is submitted then), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_args import add_epochs_and_data_dir, add_run_parser, read_config_file
from .sweep_cluster import run_plan
from .sweep_plan import CHUNKS_PER_WORKER, parse_seeds, parse_set, plan_sweep

REFUSED, FAILED, INTERRUPTED = 2, 1, 130


def add_sweep_parser(sub) -> argparse.ArgumentParser:
    """Register ``sweep`` on an ``add_subparsers`` object; returns its parser."""
    p = add_run_parser(
        sub,
        "sweep",
        "a grid of configurations × seeds as training runs on Dask",
        __doc__.split("\n\n")[0],
    )
    p.add_argument("--out", type=Path, required=True, help="results location (a shared path)")
    p.add_argument("--seeds", type=parse_seeds, help="e.g. 0-4 or 0,3,7 (default: the config's)")
    p.add_argument(
        "--set",
        dest="grid",
        action="append",
        default=[],
        type=parse_set,
        metavar="FIELD=V1,V2",
        help="sweep a dotted configuration field, e.g. training.lr=0.001,0.003 (repeatable)",
    )
    add_epochs_and_data_dir(p)
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: the cores)")
    where.add_argument("--scheduler", help="address of an existing Dask scheduler")
    p.add_argument("--gpu", action="store_true", help="one worker per GPU (needs dask-cuda)")
    p.add_argument(
        "--chunk-cells",
        type=int,
        help=f"convergence heatmaps: grid cells per task (default: {CHUNKS_PER_WORKER} tasks a "
        "worker)",
    )
    return p


def _plan(args):
    config = None
    if args.config is not None:
        config = read_config_file(args.config)
    fields = [f for f, _ in args.grid]
    if len(set(fields)) != len(fields):
        raise ValueError(f"--set: each field once, got {fields}")
    return plan_sweep(
        args.name,
        config=config,
        out=args.out,
        seeds=args.seeds,
        grid=dict(args.grid),
        epochs=args.epochs,
        data_dir=args.data_dir,
        chunk_cells=args.chunk_cells,
        backend="gpu" if args.gpu else None,
    )


def _line(key: str, rec: dict) -> str:
    if rec["status"] == "error":
        return f"{key}: error: {rec['error']}"
    if "mean_accuracy" in rec:
        return f"{key}: {rec['status']}, mean heatmap accuracy {100 * rec['mean_accuracy']:.2f} %"
    acc = rec.get("final_test_accuracy")
    if acc is None:
        acc = rec.get("final_train_accuracy")
    return f"{key}: {rec['status']}, final accuracy {100 * acc:.2f} %"


def sweep_command(args) -> int:
    try:
        plan = _plan(args)
    except ValueError as exc:
        print(f"batscope sweep: refused: {exc}", file=sys.stderr)
        return REFUSED
    total = len(plan.cells)
    print(f"{plan.name}: {total} run(s) into {plan.out}", file=sys.stderr)
    ended = []

    def say(key: str, rec: dict) -> None:
        ended.append(rec["status"])
        print(f"[{len(ended)}/{total}] {_line(key, rec)}", file=sys.stderr, flush=True)

    def started(client) -> None:
        workers = len(client.scheduler_info()["workers"])
        print(
            f"Dask: {workers} worker(s), dashboard {client.dashboard_link}",
            file=sys.stderr,
            flush=True,
        )

    try:
        records = run_plan(
            plan,
            workers=args.workers,
            scheduler=args.scheduler,
            gpu=args.gpu,
            on_record=say,
            on_client=started,
        )
    except ValueError as exc:
        print(f"batscope sweep: refused: {exc}", file=sys.stderr)
        return REFUSED
    except KeyboardInterrupt:
        print(
            f"batscope sweep: interrupted: {len(ended)} of {total} run(s) ended (see "
            f"{plan.out / 'summary.csv'}); the same command resumes the others",
            file=sys.stderr,
        )
        return INTERRUPTED
    failed = sum(r["status"] == "error" for r in records.values())
    print(
        f"{plan.out / 'summary.csv'}: {total - failed} finished, {failed} failed", file=sys.stderr
    )
    return FAILED if failed else 0
