"""A session's lesson: applies the current step to the app and checks its goal (docs/lessons.md §1).

:class:`LessonDriver` follows ``BatscopeApp.progress`` (a
:class:`~batscope.training.lesson_progress.LessonProgress`): whoever moves it — the step bar's
Back / Next, the URL on reload, an instructor's broadcast — the page applies that step: its preset
(with a fresh run), the controls and tabs it shows, its text. It gathers what the session already
knows into a :class:`~batscope.training.lesson_goals.LessonSnapshot` (run metrics and sweep cells
from records fed by the pull loop like the views; the toy editor's output, the last gradient
check and precision comparison read from those views' results) and sets ``progress.goal_met``
once the step's goal is met. A met goal stays met until the participant moves to another step.
"""

from __future__ import annotations

import math

from batscope.training.controller import ACTIVE
from batscope.training.lesson_goals import LessonSnapshot
from batscope.training.lesson_records import RunRecord, SweepRecord
from batscope.training.lessons import CONTROLS
from batscope.training.state import run_config
from batscope.widgets.lessonbar import LessonBar

from .lesson_catalog import TAB_IDS, catalog
from .presets import load_preset


def hidden_tabs_css(hidden: list[int]) -> str:
    """A stylesheet for ``pn.Tabs`` hiding the headers of tabs ``hidden`` (0-based)."""
    if not hidden:
        return ""
    rules = ", ".join(f".bk-tab:nth-child({i + 1})" for i in hidden)
    return f"{rules} {{ display: none; }}"


class LessonDriver:
    """Applies ``app.progress`` 's step to ``app`` and evaluates its goal."""

    def __init__(self, app, tab_titles, lessons: dict | None = None):
        self.app = app
        self.progress = app.progress
        self.lessons = catalog() if lessons is None else lessons
        self.run_record, self.sweep_record = RunRecord(), SweepRecord()
        self.tab_ids = [next(k for k, t in TAB_IDS.items() if t == title) for title in tab_titles]
        self.tabs_seen: set[str] = set()
        self.gradcheck: dict | None = None
        self.precision: dict | None = None
        self.bar = LessonBar(self.progress, self.lessons)
        self._from_url = False
        self.progress.param.watch(self._on_move, ["lesson", "step"])
        app.controller.param.watch(self._on_status, "status")
        for record in (self.run_record, self.sweep_record):
            record.param.watch(self.evaluate, "revision")
        app.urlstate.lesson_steps = {k: len(v.steps) for k, v in self.lessons.items()}
        app.urlstate.param.watch(self._on_url, ["lesson", "step"])

    # -- what the goals read -----------------------------------------------------------------
    def snapshot(self) -> LessonSnapshot:
        app, run, sweep = self.app, self.run_record, self.sweep_record
        editor = app.views.get("editor")
        conv = app.views.get("convergence")
        selected = None
        if conv is not None and conv.drill is not None and sweep.axes is not None:
            _, i_mu, i_sigma, _ = conv.drill
            selected = sweep.cell(i_mu, i_sigma)
        return LessonSnapshot(
            run_config=run.config,
            best_accuracy=dict(run.best_accuracy),
            epochs_done=run.epochs_done,
            reset_share=run.reset_share,
            latency_at_t_enc=run.latency_at_t_enc,
            sweep={v: dict(c) for v, c in sweep.cells.items()},
            sweep_complete=sweep.complete(),
            selected_cell=selected,
            editor=_editor_state(editor) if editor is not None and editor.result else None,
            gradcheck=self.gradcheck,
            precision=self.precision,
            tabs_seen=frozenset(self.tabs_seen),
        )

    def evaluate(self, *_) -> None:
        """Mark the step's goal met if the session's state meets it now (it stays met)."""
        step = self.step()
        if step is not None and not self.progress.goal_met and step.goal.met(self.snapshot()):
            self.progress.goal_met = True

    def step(self):
        lesson = self.lessons.get(self.progress.lesson)
        if lesson is None or self.progress.step >= len(lesson.steps):
            return None
        return lesson.steps[self.progress.step]

    # -- the views and tabs it listens to ----------------------------------------------------
    def attach_tabs(self, tabs) -> None:
        tabs.param.watch(self._on_tab, "active")
        self.tabs_seen.add(self.tab_ids[tabs.active])

    def attach_view(self, name: str, view) -> None:
        """Listen to a view built just now (views are built when their tab is first shown)."""
        if name == "editor":  # after the editor has recomputed the output
            view.param.watch(self.evaluate, ["load", "clear", "refresh", "edited"])
        elif name == "gradcheck":
            view.param.watch(lambda _: self._on_check(view), "check")
        elif name == "precision":
            view.param.watch(lambda _: self._on_compare(view), "compare")
        elif name == "convergence":  # after a tapped cell's run was re-run and drawn
            view.param.watch(lambda _: self.evaluate(), "drilled")

    def _on_check(self, view) -> None:
        res = view.result
        if res is not None:
            self.gradcheck = {
                "passed": bool(res.passed),
                "compared": len(res.compared),
                "nonzero": any(c.exact != 0 for c in res.compared),
            }
        self.evaluate()

    def _on_compare(self, view) -> None:
        c = view.at_dt
        if c is not None:
            self.precision = {
                "dt": float(view.dt),
                "count_mismatch": int(c.count_mismatch),
                "max_abs_error": float(c.max_abs_error) if c.matched else math.nan,
            }
        self.evaluate()

    def _on_tab(self, event) -> None:
        self.tabs_seen.add(self.tab_ids[event.new])
        self.evaluate()

    def _on_status(self, event) -> None:
        if event.new in ACTIVE and event.old not in ACTIVE:  # a run was launched
            self.run_record.start(run_config(self.app.network, self.app.training))

    # -- moving between steps ----------------------------------------------------------------
    def _on_url(self, *_) -> None:
        """The URL asked for a lesson step (read once, when the session opens)."""
        u = self.app.urlstate
        if u.lesson and (u.lesson, u.step - 1) != (self.progress.lesson, self.progress.step):
            self._from_url = True  # the URL's own setup stands: the preset is not re-applied
            try:
                self.progress.move_to(u.lesson, u.step - 1)
            finally:
                self._from_url = False

    def _on_move(self, *_) -> None:
        app, p = self.app, self.progress
        lesson = self.lessons.get(p.lesson)
        if lesson is None:  # no lesson (or one this server does not offer): explore freely
            self._show_controls(None)
            self._show_tabs(())
            app.urlstate.lesson = ""
            return
        if p.step >= len(lesson.steps):
            p.step = len(lesson.steps) - 1  # comes back here
            return
        step = lesson.steps[p.step]
        p.param.update(goal_met=False, hints_shown=0)
        if step.preset and not self._from_url:
            app.use_preset(step.preset)
            app.controller.param.trigger("reset")  # a fresh run for the step's setup
        self._show_controls(step.controls)
        self._show_tabs(step.tabs)
        self.gradcheck = self.precision = None
        self.tabs_seen = {self.tab_ids[app.tabs.active]} if hasattr(app, "tabs") else set()
        app.urlstate.param.update(lesson=p.lesson, step=p.step + 1)
        self.evaluate()

    def _show_controls(self, controls) -> None:
        """Show only ``controls`` in the sidebar (None: those the selected preset shows)."""
        preset = load_preset(self.app.preset)
        hidden = set(preset.hidden) if controls is None else CONTROLS - set(controls)
        self.app.set_hidden(hidden, preset.locked)
        if controls:
            self.app.open_cards(controls)

    def _show_tabs(self, ids) -> None:
        tabs = getattr(self.app, "tabs", None)
        if tabs is None:
            return
        hidden = [i for i, t in enumerate(self.tab_ids) if ids and t not in ids]
        css = hidden_tabs_css(hidden)
        tabs.stylesheets = [css] if css else []
        if ids and self.tab_ids[tabs.active] != ids[0]:
            tabs.active = self.tab_ids.index(ids[0])


def _editor_state(view) -> dict:
    out = view.result[-1]
    return {
        "counts": [int(c) for c in out.counts[0]],
        "inputs": int(view.pattern_t.size),
        "n_max": int(view.network.layers[-1].n_max),
    }
