"""Lesson files: the schema refuses a bad file naming the file, the line and the reason; goals
are checked against plain snapshots; shipped lessons all load."""

from __future__ import annotations

import json
import math

import pytest
from batscope.training.lesson_goals import (
    AccuracyGoal,
    Bound,
    EditorGoal,
    LessonSnapshot,
    PrecisionGoal,
    SweepCellGoal,
    goal_from_dict,
)
from batscope.training.lessons import LessonError, load_lesson_dir, parse_lesson

PRESETS = ("convergence", "mnist-multi")
TABS = ("editor", "learning")


def lesson(**step_fields) -> dict:
    step = {"title": "S", "text": "Text", "goal": {"kind": "tab", "tab": "editor"}}
    step.update(step_fields)
    return {"format": "batscope-lesson", "version": 1, "id": "x", "title": "X", "steps": [step]}


def parse(d) -> object:
    return parse_lesson(json.dumps(d, indent=2), "x.json", PRESETS, TABS)


def test_a_valid_lesson_loads():
    les = parse(lesson(preset="convergence", tabs=["editor"], controls=["lr"], hints=["h"]))
    step = les.steps[0]
    assert les.id == "x" and step.preset == "convergence" and step.tabs == ("editor",)
    assert step.controls == ("lr",) and step.hints == ("h",)


def test_a_json_syntax_error_names_its_line():
    text = json.dumps(lesson(), indent=2).replace('"title": "S",', '"title": "S"', 1)
    with pytest.raises(LessonError) as err:
        parse_lesson(text, "bad.json", PRESETS, TABS)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if '"title": "S"' in s) + 1
    assert err.value.line == line and "not valid JSON" in err.value.reason
    assert str(err.value).startswith(f"bad.json, line {line}: ")


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"preset": "nope"}, "preset", "steps[0].preset: 'nope' is not one of"),
        ({"tabs": ["code"]}, "tabs", "steps[0].tabs[0]: 'code' is not one of"),
        ({"controls": ["rm -rf"]}, "controls", "steps[0].controls[0]"),
        (
            {"goal": {"kind": "accuracy", "split": "val", "at_least": 120}},
            "at_least",
            "outside [0, 100]",
        ),
        ({"goal": {"kind": "teleport"}}, "kind", "steps[0].goal.kind: must be one of"),
        (
            {"goal": {"kind": "tab", "tab": "editor", "x": 1}},
            "x",
            "steps[0].goal.x: unknown field",
        ),
        ({"goal": {"kind": "editor", "neuron": 0}}, "goal", "needs count_min or count_max"),
        ({"goal": {"kind": "editor", "count_min": 3, "count_max": 1}}, "count_min", "is above"),
        (
            {"goal": {"kind": "trained", "epochs_at_least": 1, "where": {"training.evil": {}}}},
            "training.evil",
            "not a configuration field",
        ),
        ({"hints": "one"}, "hints", "steps[0].hints: must be a list"),
        ({"text": ""}, "text", "steps[0].text: must be a text"),
    ],
)
def test_schema_errors_name_the_field_path_bound_and_line(change, field, reason):
    text = json.dumps(lesson(**change), indent=2)
    with pytest.raises(LessonError) as err:
        parse_lesson(text, "bad.json", PRESETS, TABS)
    assert reason in err.value.reason
    assert f'"{field}"' in text.splitlines()[err.value.line - 1]  # the field's own line


def test_top_level_errors_and_limits():
    for d, reason in [
        ({**lesson(), "format": "other"}, "format: must be"),
        ({**lesson(), "version": 2}, "version: 2 is not supported"),
        ({**lesson(), "id": "../etc"}, "id: must be"),
        ({**lesson(), "steps": []}, "steps: must be a list of 1 to 64"),
    ]:
        with pytest.raises(LessonError, match=reason):
            parse(d)
    with pytest.raises(LessonError, match="larger than"):
        parse_lesson(" " * (300 * 1024), "big.json")
    with pytest.raises(LessonError, match="nested too deep|not valid JSON"):
        parse_lesson("[" * 100_000, "deep.json")


def test_a_folder_reports_bad_files_and_duplicate_ids(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(lesson()))
    (tmp_path / "b.json").write_text(json.dumps(lesson()))  # same id
    (tmp_path / "c.json").write_text("{")
    lessons, errors = load_lesson_dir(tmp_path, PRESETS, TABS)
    assert [les.id for les in lessons] == ["x"]
    assert sorted(str(e).split(":")[0].rsplit("/", 1)[-1] for e in errors) == [
        "b.json",
        "c.json, line 1",
    ]


def test_goals_read_only_the_snapshot():
    acc = AccuracyGoal("train", 100, (Bound("network.layers.0.init_mean", max=0.6),))
    run = {"network": {"layers": [{"init_mean": 0.6}]}}
    assert not acc.met(LessonSnapshot(best_accuracy={"train": 100.0}))  # no run config
    assert acc.met(LessonSnapshot(best_accuracy={"train": 100.0}, run_config=run))
    assert not acc.met(LessonSnapshot(best_accuracy={"train": 99.0}, run_config=run))
    bad = {"network": {"layers": [{"init_mean": 0.8}]}}
    assert not acc.met(LessonSnapshot(best_accuracy={"train": 100.0}, run_config=bad))
    ed = EditorGoal(neuron=0, count_min=2, inputs_max=4)
    assert not ed.met(LessonSnapshot())
    assert ed.met(LessonSnapshot(editor={"counts": [2, 0], "inputs": 4, "n_max": 10}))
    assert not ed.met(LessonSnapshot(editor={"counts": [2, 0], "inputs": 5, "n_max": 10}))
    cell = SweepCellGoal(single_at_most=60, multi_at_least=90)
    sweep = {"single": {(1.6, 0.0): 50.0}, "multi": {(1.6, 0.0): 100.0}}
    assert not cell.met(LessonSnapshot(sweep=sweep))
    assert cell.met(LessonSnapshot(sweep=sweep, selected_cell=(1.6, 0.0)))
    prec = PrecisionGoal(mismatch_max=0, error_max=1e-3)
    ok = {"dt": 1e-3, "count_mismatch": 0, "max_abs_error": 5e-4}
    assert prec.met(LessonSnapshot(precision=ok))
    assert not prec.met(LessonSnapshot(precision={**ok, "max_abs_error": math.nan}))


def test_goal_from_dict_types_and_texts():
    g = goal_from_dict({"kind": "sweep_done", "variants": ["multi"]})
    assert g.variants == ("multi",) and "multi" in g.text()
    with pytest.raises(ValueError, match="goal.at_least: must be a finite number"):
        goal_from_dict({"kind": "latency", "at_least": True})
    with pytest.raises(ValueError, match="goal.epochs_at_least: must be an integer"):
        goal_from_dict({"kind": "trained", "epochs_at_least": 1.5})


def test_every_shipped_lesson_loads():
    from batscope.app.lesson_catalog import read_lessons

    lessons, errors = read_lessons()
    assert errors == []
    assert list(lessons) == [
        "lif-neuron",
        "single-multi",
        "error-flow",
        "convergence",
        "sparsity-latency",
        "precision",
    ]


def test_the_run_record_keeps_best_accuracy_epochs_and_the_reset_share():
    import numpy as np
    from batscope.training.lesson_records import RunRecord, reset_share
    from batscope.training.telemetry import ErrorFlow, MetricRow, Snapshot

    flow = ErrorFlow(1, np.array([[1.0, 1.0]]), np.array([[2.0, np.inf]]), np.zeros((1, 2)))
    assert reset_share([flow]) == pytest.approx(0.5)  # |μ| = 2 of |φ| + |μ| = 4; inf ignored
    rec = RunRecord()
    rec.start({"training": {"lr": 0.1}})
    rows = (MetricRow(0, 0, "train", 1.0, 0.5), MetricRow(1, 1, "val", 1.0, 0.75))
    rec.update([Snapshot(step=2, epoch=1, batch=0, n_batches=1, epochs=3, rows=rows)])
    rec.update([Snapshot(2, 2, 0, 1, 3, rows=(MetricRow(2, 1, "train", 1.0, 0.25),))])
    assert rec.best_accuracy == {"train": 50.0, "val": 75.0} and rec.epochs_done == 2
    rec.update([Snapshot(2, 2, 0, 1, 3, errors=(flow,))])
    assert rec.reset_share == pytest.approx(0.5) and rec.config == {"training": {"lr": 0.1}}
    revision = rec.revision
    rec.reset()
    assert rec.best_accuracy == {} and rec.config is None and rec.revision == revision + 1
