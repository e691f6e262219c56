"""A participant completes the first lesson in the browser: picks it, edits the toy editor's
input spikes with the mouse, sees each goal met, presses Next, and finds the step after a reload."""

import pytest

pytest.importorskip("playwright")

from .conftest import click, open_app, shot, wait_until  # noqa: E402

# where data point (t, neuron) of the editor's input plot is on the page (Bokeh's own scales)
POSITION = """([t, n]) => {
  const view = Bokeh.index.query_one(
    (v) => v.model?.title?.text?.startsWith?.("Input spikes") && v.frame !== undefined);
  const box = view.canvas_view.el.getBoundingClientRect();
  return [box.left + view.frame.x_scale.compute(t), box.top + view.frame.y_scale.compute(n)];
}"""


def goal_met(page):
    page.locator(".lesson-goal-met").first.wait_for(timeout=20_000)


def test_a_participant_completes_the_first_lesson(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url)
    wait_until(lambda: len(served.apps) > n)
    app = served.apps[-1]
    page.locator(".lesson-select select").first.select_option(
        label="1. One LIF neuron and its closed-form spike time"
    )
    page.get_by_text("Step 1 of 2").first.wait_for(timeout=20_000)
    wait_until(lambda: app.preset == "lesson-lif" and "editor" in app.views)
    assert app.progress.lesson == "lif-neuron"
    editor = app.views["editor"]
    page.locator(".lesson-goal-open").first.wait_for()
    # step 1: clear the pattern, then click once on the input plot: one input alone stays silent
    click(page, "Clear all spikes")
    wait_until(lambda: editor.pattern_t.size == 0)
    assert not app.progress.goal_met  # no input at all does not count
    page.wait_for_timeout(500)
    x, y = page.evaluate(POSITION, [2.0, 0.0])
    page.mouse.click(x, y)
    wait_until(lambda: editor.pattern_t.size == 1)
    goal_met(page)
    assert app.progress.goal_met and editor.result[-1].counts[0][0] == 0
    click(page, "Next ▶")
    page.get_by_text("Step 2 of 2").first.wait_for(timeout=20_000)
    page.locator(".lesson-goal-open").first.wait_for()
    # step 2: load pattern 0 (neuron 0 fires once) and drag input 0 from t = 0 to t = 1 s
    click(page, "Load task pattern")
    wait_until(lambda: editor.pattern_t.size == 4)
    assert not app.progress.goal_met
    page.wait_for_timeout(500)
    x0, y0 = page.evaluate(POSITION, [0.0, 0.0])
    x1, y1 = page.evaluate(POSITION, [1.0, 0.0])
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, y1, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()
    wait_until(lambda: editor.result[-1].counts[0][0] >= 2)
    assert editor.pattern_t.size == 4  # dragged, not added
    goal_met(page)
    shot(page, "lesson-1-done")
    # a reload keeps the lesson and the step (the URL carries them)
    assert "lesson=lif-neuron" in page.url and "step=2" in page.url
    n = len(served.apps)
    page.reload()
    page.locator(".run-status p").first.wait_for(timeout=30_000)
    wait_until(lambda: len(served.apps) > n)
    page.get_by_text("Step 2 of 2").first.wait_for(timeout=20_000)
    again = served.apps[-1]
    assert (again.progress.lesson, again.progress.step) == ("lif-neuron", 1)
    assert guarded.errors == []
