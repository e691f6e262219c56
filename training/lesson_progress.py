"""Where one participant stands in a lesson: the state a lesson's step bar edits and the
instructor's room view reads (a ``param`` class, no Panel).

The lesson model itself (steps, goals, hints) and its files live elsewhere; this record only
says which lesson, which step, whether that step's goal is met and how many hints were shown.
An instructor's broadcast moves a participant by setting ``lesson`` and ``step`` here; the
participant's page follows.
"""

from __future__ import annotations

import param

MAX_STEPS = 64  # a lesson has at most this many steps (the lesson schema enforces it too)


class LessonProgress(param.Parameterized):
    """One participant's place in a lesson ("" means free exploration, no lesson)."""

    lesson = param.String(default="", doc="the lesson's id, or '' outside any lesson")
    step = param.Integer(default=0, bounds=(0, MAX_STEPS - 1), doc="the current step, from 0")
    goal_met = param.Boolean(default=False, doc="the current step's goal is reached")
    hints_shown = param.Integer(default=0, bounds=(0, None), doc="hints revealed on this step")

    def move_to(self, lesson: str, step: int = 0) -> None:
        """Go to ``step`` of ``lesson`` (a new step starts with its goal open, no hint shown)."""
        self.param.update(lesson=lesson, step=step, goal_met=False, hints_shown=0)

    def to_dict(self) -> dict:
        return {
            "lesson": self.lesson,
            "step": self.step,
            "goal_met": self.goal_met,
            "hints_shown": self.hints_shown,
        }
