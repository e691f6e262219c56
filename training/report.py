"""``batscope report RUNS… [--out DIR]``: the paper's table and figures from trained runs.

Per experiment, over its seeds (mean ± sample std, docs/training.md §5 reports the mean ± std of 5
runs): the final epoch's test accuracy, the test accuracy at the epoch chosen on the validation
split (the training split when the run had none), and, labelled as the authors' protocol, the best
test accuracy over the epochs (their scripts keep the model with the best test accuracy, which would
hide a collapse), beside the paper's value. Writes ``report.md`` and the figures (``figures.py``)
into ``--out``; a figure without the data it needs is skipped with a line saying why.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from batscope.engine.io import atomic_write_bytes

from .figures import write_figures
from .runrecords import Records, RunRecord, find_records

# docs/training.md §5: test accuracy, mean ± std over 5 runs
PAPER = {
    "mnist-multi": (98.88, 0.02),
    "mnist-single": (97.83, 0.08),
    "mnist-net3": (99.60, 0.03),
    "emnist": (85.75, 0.06),
    "fashion": (90.19, 0.12),
}
PROTOCOL = "best test epoch (authors' protocol)"


@dataclass(frozen=True)
class RunResult:
    """One run's three accuracies (fractions) and its last epoch."""

    final: float
    chosen: float
    chosen_split: str
    best_test: float
    epochs: int


def run_result(run: RunRecord) -> RunResult:
    """The final-epoch, selection-chosen and best test accuracy of a run (epochs ≥ 1 only)."""
    test = {e: a for e, a in run.accuracy.get("test", {}).items() if e >= 1}
    if not test:
        raise ValueError(f"{run.path}: no test evaluation after a training epoch")
    split = "val" if run.accuracy.get("val") else "train"
    sel = {e: a for e, a in run.accuracy.get(split, {}).items() if e >= 1 and e in test}
    last = max(test)
    # the first epoch with the best selection accuracy, as the run's best checkpoint
    chosen = max(sorted(sel), key=lambda e: sel[e]) if sel else last
    return RunResult(test[last], test[chosen], split if sel else "none", max(test.values()), last)


def group_key(run: RunRecord) -> tuple[str, str]:
    """``(experiment and what goes beyond it, data label)``: runs on different data, with
    different remedies or with settings other than the paper's (a sweep's ``--set``) are never
    averaged together, nor with the paper's own."""
    if run.task == "fashion-mnist" and run.unverified:
        data = "unofficial split"
    elif run.unverified:
        data = "unverified files"
    elif run.full_data or run.task == "emnist":
        data = "full"
    else:
        data = "embedded sample"
    name = run.experiment
    beyond = [f"--remedy {r}" for r in run.remedies] + run.departures
    if beyond:
        name += " + " + " + ".join(beyond) + " (beyond the paper)"
    return name, data


def mean_std(values) -> str:
    """``"m ± s"`` in percent (sample std, ddof = 1); one value has no spread."""
    v = 100.0 * np.asarray(values, dtype=np.float64)
    if v.size == 1:
        return f"{v[0]:.2f}"
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def results_table(records: Records) -> tuple[list[str], list[str]]:
    """The Markdown table's lines and the problems found on the way (runs left out)."""
    groups: dict[tuple[str, str], list[tuple[RunRecord, RunResult]]] = {}
    problems = []
    for run in records.runs:
        if run.task == "convergence":
            continue  # the toy task has no test set: Fig. 3 reports it
        try:
            groups.setdefault(group_key(run), []).append((run, run_result(run)))
        except ValueError as exc:
            problems.append(str(exc))
    head = [
        "| experiment | data | paper | final epoch (test) | chosen on validation (test) "
        f"| {PROTOCOL} | epochs | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines = []
    for (name, data), rows in sorted(groups.items()):
        res = [r for _, r in rows]
        experiment = name.split(" + ")[0]
        paper = PAPER.get(experiment)
        paper = f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else "–"
        splits = sorted({r.chosen_split for r in res})
        chosen = mean_std([r.chosen for r in res])
        if splits != ["val"]:
            chosen += f" (on {'/'.join(splits)})"
        seeds = ", ".join(str(run.seed) for run, _ in sorted(rows, key=lambda x: str(x[0].seed)))
        lines.append(
            f"| {name} | {data} | {paper} | {mean_std([r.final for r in res])} | {chosen} "
            f"| {mean_std([r.best_test for r in res])} | {_span([r.epochs for r in res])} "
            f"| {seeds} ({len(res)}) |"
        )
    return (head + lines if lines else []), problems


def report_markdown(records: Records, figures: list[str]) -> str:
    table, problems = results_table(records)
    out = ["# batscope report", ""]
    if table:
        out += [
            "Test accuracy in %, mean ± sample std over seeds (one seed: no ±). Paper: its "
            "reported mean ± std over 5 runs, 100 epochs unless stated (docs/training.md §5). "
            f"*{PROTOCOL}*: the best test accuracy over the epochs, as the authors' scripts keep "
            "the model with the best test accuracy; it hides a collapse and is optimistic. "
            "*unofficial split*: trained and tested on a Fashion-MNIST split other than the "
            "official one, not comparable with the paper. A row naming a `--remedy` trained "
            "with a remedy beyond the paper, one naming `field=value` with a setting other "
            "than the paper's (a sweep's `--set`); the paper's value stays for reference.",
            "",
            *table,
            "",
        ]
    else:
        out += ["No run with a test evaluation after a training epoch: no table.", ""]
    out += ["## Figures", "", *[f"- {line}" for line in figures], ""]
    issues = records.problems + problems
    if issues:
        out += ["## Left out", "", *[f"- {p}" for p in issues], ""]
    return "\n".join(out)


def add_report_parser(sub) -> argparse.ArgumentParser:
    """Register ``report`` on an ``add_subparsers`` object; returns its parser."""
    p = sub.add_parser(
        "report",
        help="the paper's table and figures from run folders",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("runs", nargs="+", type=Path, help="run folders, or folders of them")
    p.add_argument("--out", type=Path, default=Path("report"), help="where report.md goes")
    p.add_argument("--no-png", action="store_true", help="HTML figures only (no Chromium)")
    return p


def report_command(args) -> int:
    """Exit status 0 when a table or a figure was written, 2 when nothing could be read."""
    records = find_records(args.runs)
    for line in records.problems:
        print(f"batscope report: left out: {line}", file=sys.stderr)
    if not records.runs and not records.heatmaps:
        print("batscope report: nothing to report (no readable run folder)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    figures = write_figures(records, args.out, png=not args.no_png)
    text = report_markdown(records, figures)
    atomic_write_bytes(args.out / "report.md", text.encode())
    print(text)
    return 0
