"""The lesson step bar: which lesson and step, its text, the goal's state, hints, Back / Next.

It renders a :class:`~batscope.training.lesson_progress.LessonProgress` and the lessons' text
(docs/lessons.md §1) and edits only the progress (move to a step, show one more hint); whether a
goal is met is decided elsewhere and arrives as ``progress.goal_met``. Lesson text is Markdown
rendered with raw HTML disabled: a teacher's file cannot put script or markup on the page.
"""

from __future__ import annotations

import panel as pn
from batscope.training.lesson_progress import LessonProgress
from markdown_it import MarkdownIt

_MARKDOWN = MarkdownIt("commonmark", {"html": False})  # raw HTML is shown as text, not markup
NONE = "— none: explore freely —"


def render_markdown(text: str) -> str:
    """HTML of Markdown ``text`` with raw HTML escaped and unsafe link schemes refused."""
    return _MARKDOWN.render(text)


def _options(lessons: dict) -> dict:
    """Select options title -> id; a title used twice (a teacher's copy) is told by its id."""
    titles = [lesson.title for lesson in lessons.values()]
    return {
        (lesson.title if titles.count(lesson.title) == 1 else f"{lesson.title} ({key})"): key
        for key, lesson in lessons.items()
    }


class LessonBar(pn.viewable.Viewer):
    """Lesson picker, step header, text, goal, hints and Back / Hint / Next for one session.

    ``lessons`` maps a lesson id to its :class:`~batscope.training.lessons.Lesson`; a goal is
    described by its own ``text()``.
    """

    def __init__(self, progress: LessonProgress, lessons: dict, **params):
        super().__init__(**params)
        self.progress, self.lessons = progress, lessons
        self.select = pn.widgets.Select(
            label="Lesson",
            options={NONE: "", **_options(lessons)},
            value=progress.lesson if progress.lesson in lessons else "",
            sizing_mode="stretch_width",
            css_classes=["lesson-select"],
        )
        self.header = pn.pane.Markdown("", css_classes=["lesson-step"], margin=(0, 5))
        self.text = pn.pane.HTML("", css_classes=["lesson-text"], sizing_mode="stretch_width")
        self.goal = pn.pane.HTML("", css_classes=["lesson-goal"], sizing_mode="stretch_width")
        self.hints = pn.pane.HTML("", css_classes=["lesson-hints"], sizing_mode="stretch_width")
        self.back = pn.widgets.Button(label="◀ Back", css_classes=["lesson-back"], width=80)
        self.hint = pn.widgets.Button(
            label="Hint", color="light", css_classes=["lesson-hint"], width=70
        )
        self.next = pn.widgets.Button(
            label="Next ▶", color="primary", css_classes=["lesson-next"], width=80
        )
        self.select.param.watch(self._pick, "value")
        self.back.on_click(lambda _: self._go(-1))
        self.next.on_click(lambda _: self._go(+1))
        self.hint.on_click(self._more_hint)
        progress.param.watch(self._render, ["lesson", "step", "goal_met", "hints_shown"])
        # filled when a lesson is first picked: a session without one builds none of it
        self._steps = pn.Column(sizing_mode="stretch_width")
        self._layout = pn.Card(
            self.select,
            self._steps,
            title="Lesson",
            sizing_mode="stretch_width",
            margin=(5, 0),
            css_classes=["lesson-bar"],
        )
        self._render()

    def _lesson(self):
        return self.lessons.get(self.progress.lesson)

    def _pick(self, event) -> None:
        if event.new != self.progress.lesson:
            self.progress.move_to(event.new, 0)

    def _go(self, delta: int) -> None:
        lesson = self._lesson()
        if lesson is not None and 0 <= self.progress.step + delta < len(lesson.steps):
            self.progress.move_to(lesson.id, self.progress.step + delta)

    def _more_hint(self, _=None) -> None:
        lesson = self._lesson()
        if lesson is not None:
            n = len(lesson.steps[self.progress.step].hints)
            self.progress.hints_shown = min(self.progress.hints_shown + 1, n)

    def _render(self, *_) -> None:
        lesson, p = self._lesson(), self.progress
        if self.select.value != (p.lesson if lesson is not None else ""):
            self.select.value = p.lesson if lesson is not None else ""
        self._steps.visible = lesson is not None
        if lesson is None:
            return
        if not self._steps.objects:
            self._steps.objects = [
                self.header,
                self.text,
                self.goal,
                self.hints,
                pn.Row(self.back, self.hint, self.next),
            ]
        step = lesson.steps[min(p.step, len(lesson.steps) - 1)]
        self.header.object = f"**Step {p.step + 1} of {len(lesson.steps)}: {step.title}**"
        self.text.object = render_markdown(step.text)
        state = "met ✓" if p.goal_met else "not yet"
        self.goal.object = (
            f'<div class="lesson-goal-{"met" if p.goal_met else "open"}"><b>Goal</b> ({state}): '
            f"{render_markdown(step.goal.text())}</div>"
        )
        shown = step.hints[: p.hints_shown]
        self.hints.object = "".join(
            f'<div class="lesson-hint-text"><b>Hint {i + 1}.</b> {render_markdown(h)}</div>'
            for i, h in enumerate(shown)
        )
        self.hint.disabled = p.hints_shown >= len(step.hints)
        self.back.disabled = p.step == 0
        self.next.disabled = p.step >= len(lesson.steps) - 1

    def __panel__(self):
        return self._layout
