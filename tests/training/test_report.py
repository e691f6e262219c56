"""``batscope report`` on synthetic run folders written here, every value known: the table's
mean ± std and protocol labels, the figures written (data inside, nothing fetched from a network)
and bad or missing folders reported clearly, not crashed on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from batscope.app.cli import main
from batscope.training.experiments import departures, experiment_config
from batscope.training.figures import CHROMIUM
from batscope.training.report import PROTOCOL
from batscope.training.runrecords import find_records

# seed -> (test accuracy per epoch 0..3, val accuracy per epoch 0..3)
FASHION = {
    0: ([0.10, 0.80, 0.85, 0.82], [0.10, 0.79, 0.86, 0.84]),  # chosen epoch 2
    1: ([0.10, 0.70, 0.90, 0.60], [0.10, 0.71, 0.88, 0.95]),  # chosen epoch 3
    2: ([0.10, 0.88, 0.86, 0.87], [0.10, 0.90, 0.90, 0.80]),  # tie: the first, epoch 1
}


def write_run(folder: Path, experiment, seed, test, val, *, verify=True, spikes=(5.0, 2.0),
              active=0.25, remedies=(), settings=()):  # fmt: skip
    """A run folder of ``experiment`` (its real configuration, as ``batscope train`` writes it)
    with ``settings`` (``(field, value)``) changed, as a sweep's ``--set`` does."""
    folder.mkdir(parents=True)
    config = experiment_config(experiment)
    config["training"]["seed"] = seed
    config["run"].update(verify=verify, remedies=list(remedies))
    for field, value in settings:
        section, key = field.split(".")
        config[section][key] = value
    (folder / "config.json").write_text(json.dumps(config))
    lines = [
        "epoch,split,loss,accuracy,step,lr,silent_outputs,silent_sample_fraction,dead_fraction"
    ]
    evs = []
    for epoch, (t, v) in enumerate(zip(test, val, strict=True)):
        lines += [f"{epoch},val,0.5,{v},0,0.001,,0.0,0.1", f"{epoch},test,0.5,{t},0,0.001,,0.0,0.1"]
        evs.append(
            {
                "epoch": epoch,
                "split": "test",
                "accuracy": t,
                "sparsity": [
                    {"name": "input", "spikes_per_sample": 150.0, "active_fraction": 0.2},
                    {
                        "name": "layer 1",
                        "spikes_per_sample": spikes[0] + epoch,
                        "active_fraction": active,
                    },
                    {"name": "layer 2", "spikes_per_sample": spikes[1], "active_fraction": 0.5},
                ],  # fmt: skip
                "latency": {"t": [0.0, 0.1, 0.2], "accuracy": [0.0, t / 2, t], "t_enc": 0.1},
            }
        )
    (folder / "metrics.csv").write_text("\n".join(lines) + "\n")
    (folder / "evaluations.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))


@pytest.fixture
def runs(tmp_path):
    root = tmp_path / "runs"
    for seed, (test, val) in FASHION.items():
        write_run(root / "fashion" / f"seed-{seed}", "fashion", seed, test, val,
                  verify=False)  # fmt: skip
    write_run(root / "fashion-redraw" / "seed-0", "fashion", 0, [0.1, 0.85], [0.1, 0.84],
              remedies=["redraw-silent"])  # fmt: skip
    write_run(root / "mnist-single" / "seed-0", "mnist-single", 0, [0.1, 0.97], [0.1, 0.96],
              spikes=(700.0, 10.0), active=0.84)  # fmt: skip
    write_run(root / "mnist-multi" / "seed-0", "mnist-multi", 0, [0.1, 0.98], [0.1, 0.97],
              spikes=(300.0, 40.0), active=0.12)  # fmt: skip
    heat = root / "sweep" / "convergence-single"
    heat.mkdir(parents=True)
    (heat / "config.json").write_text(json.dumps({"run": {"experiment": "convergence-single"}}))
    (heat / "heatmap.csv").write_text(
        "Mean,Std,Accuracy\n0,0,50\n0.2,0,75.5\n\n0,0.2,60\n0.2,0.2,100\n\n"
    )
    return root


def table_row(text: str, name: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {name} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def pm(values) -> str:
    v = 100 * np.array(values)
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}"


def test_table_mean_std_over_seeds_and_protocol_labels(runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(runs), "--out", str(out), "--no-png"]) == 0
    text = (out / "report.md").read_text()
    assert text.strip() in capsys.readouterr().out  # printed too
    header = table_row(text, "experiment")
    assert header[5] == PROTOCOL and "authors' protocol" in PROTOCOL
    row = table_row(text, "fashion")
    assert row[1] == "unofficial split"  # --no-verify Fashion files: not the official split
    assert row[2] == "90.19 ± 0.12"  # docs/training.md §5
    assert row[3] == pm([0.82, 0.60, 0.87])  # final epoch
    assert row[4] == pm([0.85, 0.60, 0.88])  # epoch chosen on validation
    assert row[5] == pm([0.85, 0.90, 0.88])  # best test epoch
    assert row[6] == "3" and row[7] == "0, 1, 2 (3)"
    remedy = table_row(text, "fashion + --remedy redraw-silent (beyond the paper)")
    assert remedy[2:4] == ["90.19 ± 0.12", "85.00"]  # never averaged with the paper's preset
    single = table_row(text, "mnist-single")
    assert single[1:6] == ["full", "97.83 ± 0.08", "97.00", "97.00", "97.00"]  # one seed: no ±


def test_figures_hold_the_data_and_load_nothing_from_a_network(runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(runs), "--out", str(out), "--no-png"]) == 0
    html = {p.stem: p.read_text() for p in out.glob("*.html")}
    assert set(html) == {"fig3_convergence", "fig4_active_neurons", "fig5_spikes_per_layer",
                         "fig6_latency"}  # fmt: skip
    for text in html.values():
        # BokehJS is inline: no script or stylesheet comes from elsewhere
        assert not re.search(r"<(script|link)[^>]*(src|href)=[\"']?(https?:)?//", text)
        assert "Bokeh.embed" in text
    assert "75.5" in html["fig3_convergence"] and "single-spike" in html["fig3_convergence"]
    assert "mnist-single (single-spike)" in html["fig4_active_neurons"]
    assert "84" in html["fig4_active_neurons"]  # 84 % active (the synthetic single-spike run)
    assert "layer 1" in html["fig5_spikes_per_layer"]
    assert "T_enc = 100 ms" in html["fig6_latency"]


def test_runs_with_other_settings_get_their_own_row(tmp_path):
    """A sweep's ``--set`` keeps the experiment's name in each run's configuration: such runs
    are never averaged with the paper's settings, and their row says what differs."""
    root = tmp_path / "runs"
    write_run(root / "paper" / "seed-0", "mnist-multi", 0, [0.1, 0.98], [0.1, 0.97])
    write_run(root / "paper" / "seed-1", "mnist-multi", 1, [0.1, 0.96], [0.1, 0.97])
    decay = (("training.lr_decay", 0.5), ("training.lr_floor", 0.0001))
    write_run(root / "decay" / "seed-0", "mnist-multi", 0, [0.1, 0.90], [0.1, 0.9], settings=decay)
    out = tmp_path / "report"
    assert main(["report", str(root), "--out", str(out), "--no-png"]) == 0
    text = (out / "report.md").read_text()
    assert table_row(text, "mnist-multi")[3] == pm([0.98, 0.96])  # the paper's settings only
    name = "mnist-multi + training.lr_decay=0.5 + training.lr_floor=0.0001 (beyond the paper)"
    row = table_row(text, name)
    assert row[2:4] == ["98.88 ± 0.02", "90.00"] and row[7] == "0 (1)"


def test_departures_name_the_settings_not_the_runs_own_choices():
    config = experiment_config("mnist-multi")
    assert departures(config) == []
    config["training"].update(seed=7, epochs=3, backend="gpu", dtype="float64", n_train=100)
    config["training"]["val_fraction"] = 0.5
    del config["training"]["tau_l"]  # a field an older run folder did not record
    assert departures(config) == []  # a run's own choices, and nothing unrecorded
    config["network"]["layers"][0]["theta"] = 0.3
    config["training"]["lr"] = 0.001
    assert departures(config) == ["network.layers.0.theta=0.3", "training.lr=0.001"]
    config["network"]["layers"].insert(0, dict(config["network"]["layers"][0], size=100))
    assert departures(config) == ["network.layers=100-800-10", "training.lr=0.001"]
    assert departures({"network": {}, "training": {"lr": 1.0}}) == []  # names no experiment
    assert departures({"run": {"experiment": "nonsense"}}) == []


def test_missing_data_skips_a_figure_with_the_reason(tmp_path):
    root = tmp_path / "runs"
    write_run(root / "a", "mnist-multi", 0, [0.1, 0.9], [0.1, 0.9])
    (root / "a" / "evaluations.jsonl").unlink()
    out = tmp_path / "report"
    assert main(["report", str(root), "--out", str(out), "--no-png"]) == 0
    text = (out / "report.md").read_text()
    assert "Fig. 3 (convergence maps): skipped, no convergence heatmap" in text
    assert "Fig. 6 (accuracy and confidence against decision time): skipped" in text
    assert not list(out.glob("*.html"))
    assert table_row(text, "mnist-multi")[3] == "90.00"


def test_bad_and_missing_folders_are_reported_not_crashed_on(runs, tmp_path, capsys):
    bad = tmp_path / "bad"
    (bad / "broken").mkdir(parents=True)
    (bad / "broken" / "config.json").write_text("{not json")
    (bad / "summary.csv").write_text(
        "run,seed,status,error\nruns/a,0,trained,\nruns/b,1,error,MemoryError: out of memory\n"
    )
    (bad / "never-started").mkdir()
    (bad / "never-started" / "config.json").write_text("{}")
    write_run(bad / "no-accuracy", "mnist-multi", 0, [0.5], [0.5])
    (bad / "no-accuracy" / "metrics.csv").write_text("epoch,split,loss\n0,test,1.0\n")
    write_run(bad / "untrained", "mnist-multi", 1, [0.5], [0.5])  # epoch 0 only
    found = find_records([bad, tmp_path / "nowhere", runs / "fashion" / "seed-0" / "config.json"])
    problems = "\n".join(found.problems)
    assert "broken/config.json: not valid JSON" in problems
    assert "never-started: config.json but no metrics.csv" in problems
    assert "no-accuracy/metrics.csv: missing column(s) accuracy" in problems
    assert "nowhere: no such file or folder" in problems
    assert "sweep run runs/b failed: MemoryError: out of memory" in problems
    assert "runs/a" not in problems
    assert "config.json: not a folder" in problems
    out = tmp_path / "report"
    assert main(["report", str(bad), str(runs), "--out", str(out), "--no-png"]) == 0
    text = (out / "report.md").read_text()
    assert "## Left out" in text and "untrained: no test evaluation after a training epoch" in text
    assert table_row(text, "fashion")[7] == "0, 1, 2 (3)"  # the good runs still reported
    assert main(["report", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "nothing to report" in capsys.readouterr().err


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
def test_png_written_from_the_offline_html(runs, tmp_path):
    pytest.importorskip("playwright")
    out = tmp_path / "report"
    assert main(["report", str(runs / "mnist-single"), str(runs / "mnist-multi"), "--out",
                 str(out)]) == 0  # fmt: skip
    assert "PNG: beside each HTML file" in (out / "report.md").read_text()
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["fig4_active_neurons.png", "fig5_spikes_per_layer.png", "fig6_latency.png"]
    for p in out.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
