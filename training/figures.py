"""The paper's figures from trained runs, as standalone HTML (Bokeh, resources inline) and PNG.

- Fig. 3: convergence maps, best training accuracy (mean over runs) over the (μ, σ) grid of the
  initial weights, single- and multi-spike (docs/training.md §4): from sweep heatmaps, else from
  convergence runs with different (μ, σ);
- Fig. 4: active hidden neurons and spikes per inference, single- against multi-spike;
- Fig. 5: spikes per sample in each layer over the epochs;
- Fig. 6: accuracy and confidence against decision time, with T_enc marked (docs/training.md §5).

Figures 4–6 read the test evaluations of each run (``evaluations.jsonl``), averaged over the seeds
of an experiment. The HTML files carry BokehJS inline, so they open with no network; the PNGs are
screenshots of them in Chromium (Playwright), taken with every request outside the file refused.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from batscope.engine.io import atomic_write_bytes
from bokeh.embed import file_html
from bokeh.layouts import row
from bokeh.models import BasicTicker, ColorBar, ColumnDataSource, LinearColorMapper, Span
from bokeh.palettes import Category10_10, Viridis256
from bokeh.plotting import figure
from bokeh.resources import INLINE

from .runrecords import HeatmapRecord, Records, RunRecord

WIDTH, HEIGHT = 460, 360
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


class Skipped(Exception):
    """A figure lacks its data (the message says what is missing)."""


def _label(run: RunRecord) -> str:
    kind = "single-spike" if run.single_spike else "multi-spike"
    return f"{run.experiment} ({kind})"


def _by_experiment(runs: list[RunRecord]) -> dict[str, list[dict]]:
    """The last test evaluation of every image run, grouped by experiment label."""
    out: dict[str, list[dict]] = defaultdict(list)
    for run in runs:
        ev = run.last_evaluation("test")
        if run.task != "convergence" and ev is not None:
            out[_label(run)].append(ev)
    return dict(sorted(out.items()))


def convergence_cells(records: Records) -> dict[str, HeatmapRecord]:
    """One heatmap per variant: a sweep's, else the convergence runs' cells (μ, σ) averaged."""
    maps = {h.variant: h for h in records.heatmaps}
    cells: dict[str, dict[tuple[float, float], list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for run in records.runs:
        variant = "single" if run.single_spike else "multi"
        layer = run.layers[0] if run.layers else {}
        if (
            run.task != "convergence"
            or variant in maps  # a sweep's heatmap wins over single runs
            or layer.get("init") != "normal"
            or not run.accuracy.get("train")
        ):
            continue
        key = (float(layer["init_mean"]), float(layer["init_std"]))
        cells[variant][key].append(100.0 * max(run.accuracy["train"].values()))
    for variant, by_cell in cells.items():
        means = np.array(sorted({m for m, _ in by_cell}))
        stds = np.array(sorted({s for _, s in by_cell}))
        acc = np.full((len(stds), len(means)), np.nan)
        for (m, s), v in by_cell.items():
            acc[np.searchsorted(stds, s), np.searchsorted(means, m)] = np.mean(v)
        maps[variant] = HeatmapRecord(Path("runs"), variant, means, stds, acc)
    return maps


def _grid_step(values: np.ndarray) -> float:
    """The spacing of a heatmap axis (the paper's 0.2 for a single value)."""
    return float(np.min(np.diff(values))) if values.size > 1 else 0.2


def fig3_convergence(records: Records):
    maps = convergence_cells(records)
    if not maps:
        raise Skipped(
            "no convergence heatmap (heatmap.csv of a `batscope sweep`) and no convergence run"
        )
    mapper = LinearColorMapper(palette=Viridis256, low=50.0, high=100.0)
    plots = []
    for variant in ("single", "multi"):
        if variant not in maps:
            continue
        h = maps[variant]
        ss, mm = np.meshgrid(h.stds, h.means, indexing="ij")
        src = ColumnDataSource(
            {  # lists, not arrays: the values stay readable in the HTML
                "mean": mm.ravel().tolist(),
                "std": ss.ravel().tolist(),
                "accuracy": h.accuracy.ravel().tolist(),
            }
        )
        p = figure(
            title=f"Fig. 3, {variant}-spike: best training accuracy (%)",
            x_axis_label="μ of the initial weights",
            y_axis_label="σ of the initial weights",
            width=WIDTH,
            height=HEIGHT,
            tooltips=[("μ", "@mean"), ("σ", "@std"), ("accuracy", "@accuracy{0.0} %")],
        )
        p.rect(
            "mean", "std", _grid_step(h.means), _grid_step(h.stds), source=src,
            fill_color={"field": "accuracy", "transform": mapper}, line_color=None,
        )  # fmt: skip
        plots.append(p)
    plots[-1].add_layout(ColorBar(color_mapper=mapper, title="%"), "right")
    return row(*plots)


def fig4_active(records: Records):
    groups = _by_experiment(records.runs)
    names, active, spikes = [], [], []
    for name, evs in groups.items():
        hidden = [[s for s in ev["sparsity"][1:-1]] for ev in evs]
        if not all(hidden):
            continue
        names.append(name)
        active.append(
            100 * float(np.mean([np.mean([s["active_fraction"] for s in h]) for h in hidden]))
        )
        spikes.append(
            float(np.mean([sum(s["spikes_per_sample"] for s in ev["sparsity"][1:]) for ev in evs]))
        )
    if not names:
        raise Skipped("no run with a hidden layer and a test evaluation (evaluations.jsonl)")
    src = ColumnDataSource({"experiment": names, "active": active, "spikes": spikes})
    opts = {"x_range": names, "width": WIDTH, "height": HEIGHT}
    a = figure(title="Fig. 4: active hidden neurons (% per sample)", **opts)
    a.vbar(x="experiment", top="active", width=0.6, source=src)
    s = figure(title="Fig. 4: spikes per inference (hidden + output)", **opts)
    s.vbar(x="experiment", top="spikes", width=0.6, source=src, color="darkorange")
    for p in (a, s):
        p.xaxis.major_label_orientation = 0.5
        p.y_range.start = 0
    return row(a, s)


def fig5_spikes_per_layer(records: Records):
    per: dict[tuple[str, str], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for run in records.runs:
        if run.task == "convergence":
            continue
        for ev in run.evaluations:
            if ev.get("split") == "test":
                for s in ev.get("sparsity", [])[1:]:
                    per[(_label(run), s["name"])][ev["epoch"]].append(s["spikes_per_sample"])
    if not per:
        raise Skipped("no test evaluation with sparsity per layer (evaluations.jsonl)")
    p = figure(
        title="Fig. 5: spikes per sample in each layer (test set)",
        x_axis_label="epoch",
        y_axis_label="spikes per sample",
        width=2 * WIDTH,
        height=HEIGHT,
    )
    for i, ((name, layer), by_epoch) in enumerate(sorted(per.items())):
        epochs = sorted(by_epoch)
        src = ColumnDataSource(
            {"epoch": epochs, "spikes": [float(np.mean(by_epoch[e])) for e in epochs]}
        )
        color = Category10_10[i % 10]
        p.line("epoch", "spikes", source=src, color=color, legend_label=f"{name}, {layer}")
        p.scatter("epoch", "spikes", source=src, color=color)
    p.xaxis.ticker = BasicTicker(min_interval=1)  # whole epochs
    p.legend.location = "top_right"
    return p


def fig6_latency(records: Records):
    groups = _by_experiment(records.runs)
    if not groups:
        raise Skipped("no test evaluation with a latency curve (evaluations.jsonl)")
    opts = {"x_axis_label": "decision time (ms)", "width": WIDTH, "height": HEIGHT}
    acc = figure(title="Fig. 6: accuracy against decision time", y_axis_label="%", **opts)
    conf = figure(title="Fig. 6: confidence acc(T)/acc(T_sim)", y_axis_label="%", **opts)
    t_enc = set()
    for i, (name, evs) in enumerate(groups.items()):
        t = 1000.0 * np.asarray(evs[0]["latency"]["t"], dtype=np.float64)
        a = 100.0 * np.mean([np.asarray(ev["latency"]["accuracy"], float) for ev in evs], axis=0)
        c = 100.0 * a / a[-1] if a[-1] > 0 else np.zeros_like(a)
        t_enc.add(1000.0 * float(evs[0]["latency"]["t_enc"]))
        src = ColumnDataSource(
            {"t_ms": t.tolist(), "accuracy": a.tolist(), "confidence": c.tolist()}
        )
        color = Category10_10[i % 10]
        acc.line("t_ms", "accuracy", source=src, color=color, legend_label=name)
        conf.line("t_ms", "confidence", source=src, color=color, legend_label=name)
    for p in (acc, conf):
        for t in sorted(t_enc):
            p.add_layout(Span(location=t, dimension="height", line_dash="dashed"))
        p.legend.location = "bottom_right"
    acc.title.text += f" (dashed: T_enc = {', '.join(f'{t:g}' for t in sorted(t_enc))} ms)"
    return row(acc, conf)


FIGURES = {
    "fig3_convergence": ("Fig. 3 (convergence maps)", fig3_convergence),
    "fig4_active_neurons": ("Fig. 4 (active neurons, single vs multi-spike)", fig4_active),
    "fig5_spikes_per_layer": ("Fig. 5 (spikes per layer)", fig5_spikes_per_layer),
    "fig6_latency": ("Fig. 6 (accuracy and confidence against decision time)", fig6_latency),
}


def write_html(layout, path: Path, title: str) -> None:
    """A standalone HTML file with BokehJS inline: it opens with no network."""
    atomic_write_bytes(path, file_html(layout, INLINE, title).encode())


def write_png(html: list[Path], chromium: str = CHROMIUM) -> str | None:
    """Screenshot each HTML file beside it as PNG; the reason when it cannot (else None).

    The browser is driven from a thread of its own: Playwright's sync API refuses to run where an
    asyncio loop is already running (a notebook, or a caller that drives a browser itself).
    """
    if not Path(chromium).exists():
        return f"no Chromium at {chromium} (install it or set CHROMIUM_PATH)"
    try:
        from playwright.sync_api import sync_playwright  # optional: the test extra installs it
    except ImportError:
        return "Playwright is not installed (python -m pip install -e '.[test]')"
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(_screenshots, sync_playwright, html, chromium).result()
    return None


def _screenshots(sync_playwright, html: list[Path], chromium: str) -> None:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 2 * WIDTH + 80, "height": HEIGHT + 40})
            page.route(
                "**/*", lambda r: r.continue_() if r.request.url.startswith("file:") else r.abort()
            )
            for path in html:
                page.goto(path.resolve().as_uri())
                page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
                page.wait_for_timeout(300)
                png = page.screenshot(full_page=True)
                atomic_write_bytes(path.with_suffix(".png"), png)
        finally:
            browser.close()


def write_figures(records: Records, out: Path, png: bool = True) -> list[str]:
    """Write every figure the records allow into ``out``; one line per figure for the report."""
    lines, written = [], []
    for stem, (title, build) in FIGURES.items():
        try:
            layout = build(records)
        except Skipped as exc:
            lines.append(f"{title}: skipped, {exc}")
            continue
        path = out / f"{stem}.html"
        write_html(layout, path, title)
        written.append(path)
        lines.append(f"{title}: {path.name}")
    if written and png:
        why = write_png(written)
        lines.append("PNG: beside each HTML file" if why is None else f"PNG skipped: {why}")
    return lines
