"""The lesson wiring of the app: the URL keeps the step across a reload and refuses a bad one,
a broadcast move is followed, the bar's text carries no raw HTML, `serve --lessons` checks DIR."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

pn = pytest.importorskip("panel")


def test_progress_survives_a_reload_through_the_url(app):
    from batscope.app.factory import create_app

    location = SimpleNamespace(search="")
    location.param = SimpleNamespace(watch=lambda *a, **k: None)
    app.sync_url(location)
    app.progress.move_to("precision", 1)
    assert "lesson=precision" in location.search and "step=2" in location.search
    other = create_app()
    try:
        other.sync_url(SimpleNamespace(search=location.search, param=location.param))
        assert (other.progress.lesson, other.progress.step) == ("precision", 1)
        assert other.lesson.tab_ids[other.tabs.active] == "precision"
        assert other.urlstate.message == ""
    finally:
        other.controller.shutdown()


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("?lesson=nope", "lesson: unknown lesson"),
        ("?lesson=precision&step=3", "step: 3 is outside 1 … 2"),
        ("?lesson=precision&step=0", "step: 0 is outside"),
        ("?lesson=precision&step=x", "step: &#x27;x&#x27; is not an integer"),  # escaped
        ("?step=2", "step: given without a lesson"),
    ],
)
def test_a_bad_lesson_in_the_url_is_refused_and_changes_nothing(app, query, reason):
    assert not app.urlstate.load(query)
    assert reason in app.urlstate.message and app.progress.lesson == ""


def test_a_broadcast_move_is_followed(app):
    app.progress.move_to("convergence", 2)  # what the instructor's broadcast calls
    assert app.preset == "convergence" and app.lesson.tab_ids[app.tabs.active] == "learning"
    assert app.form.inputs["seed"].visible and not app.form.inputs["loss"].visible
    # the cards that hold the step's controls are opened (the sidebar's start collapsed)
    assert not app._training_card.collapsed and not app.form._cards["Run"].collapsed
    assert not app._network_card.collapsed  # the step shows layer.init_mean and init_std
    css = app.tabs.stylesheets[0]
    assert ".bk-tab:nth-child(3)" in css and ".bk-tab:nth-child(2)" not in css
    assert "Step 3 of 3" in app.lesson.bar.header.object
    app.progress.move_to("", 0)
    assert app.tabs.stylesheets == [] and not app.lesson.bar._steps.visible
    assert app.form.inputs["loss"].visible  # the preset's own controls again


def test_hints_are_revealed_on_request_and_text_is_not_raw_html():
    from batscope.training.lesson_progress import LessonProgress
    from batscope.training.lessons import parse_lesson
    from batscope.widgets.lessonbar import LessonBar

    d = {
        "format": "batscope-lesson",
        "version": 1,
        "id": "t",
        "title": "T",
        "steps": [
            {
                "title": "S",
                "text": "**bold** <script>alert(1)</script> [x](javascript:alert(1))",
                "goal": {"kind": "tab", "tab": "editor"},
                "hints": ["first", "second"],
            }
        ],
    }
    lesson = parse_lesson(json.dumps(d), tabs=("editor",))
    copy = parse_lesson(json.dumps({**d, "id": "t2"}), tabs=("editor",))
    progress = LessonProgress()
    bar = LessonBar(progress, {"t": lesson, "t2": copy})
    assert list(bar.select.options)[1:] == ["T (t)", "T (t2)"]  # both can be picked
    progress.move_to("t", 0)
    html = bar.text.object
    assert "<strong>bold</strong>" in html and "<script>" not in html and "&lt;script&gt;" in html
    assert "href" not in html  # the javascript: link is left as text
    assert "first" not in bar.hints.object and not bar.hint.disabled
    bar.hint.clicks += 1
    assert "first" in bar.hints.object and "second" not in bar.hints.object
    bar.hint.clicks += 1
    assert "second" in bar.hints.object and bar.hint.disabled and progress.hints_shown == 2


def test_serve_lessons_refuses_a_bad_folder_before_starting(tmp_path, capsys, monkeypatch):
    from batscope.app import cli

    started = []
    monkeypatch.setattr(cli.subprocess, "Popen", lambda *a, **k: started.append(k))
    (tmp_path / "mine.json").write_text('{"format": "batscope-lesson",\n "version": 1,\n}')
    assert cli.main(["serve", "--lessons", str(tmp_path), "--no-warm"]) == 2
    err = capsys.readouterr().err
    assert "mine.json, line 3: not valid JSON" in err and started == []


def test_serve_lessons_passes_a_good_folder_to_the_server(tmp_path, monkeypatch):
    from batscope.app import cli
    from batscope.app.lesson_catalog import ENV, LESSON_DIR, read_lessons

    mine = json.loads((LESSON_DIR / "6-precision.json").read_text())
    mine["id"] = "my-precision"
    (tmp_path / "mine.json").write_text(json.dumps(mine))
    started = []

    class Proc:
        def __init__(self, cmd, env):
            started.append(env)

        def wait(self, timeout=None):
            return 0

    monkeypatch.setattr(cli.subprocess, "Popen", Proc)
    assert cli.main(["serve", "--lessons", str(tmp_path), "--no-warm"]) == 0
    assert started[0][ENV] == str(tmp_path.resolve())
    lessons, errors = read_lessons(started[0][ENV])
    assert "my-precision" in lessons and errors == []
    (tmp_path / "mine.json").write_text(json.dumps({**mine, "id": "precision"}))
    _, errors = read_lessons(tmp_path)
    assert "is a shipped lesson's" in str(errors[0])
