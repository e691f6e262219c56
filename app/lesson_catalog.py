"""The lessons a server offers: those shipped in ``app/lessons/`` and a teacher's own.

``batscope serve --lessons DIR`` checks DIR before the server starts (a bad file stops it, with
the file, line and reason) and passes it to the server process in the environment variable
:data:`ENV`; each session reads the catalogue, built once per process. A teacher's lesson may
not reuse a shipped lesson's id (docs/lessons.md §4).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

from batscope.training.lessons import Lesson, LessonError, load_lesson_dir

from .presets import list_presets

LESSON_DIR = Path(__file__).with_name("lessons")
ENV = "BATSCOPE_LESSONS"
#: lesson files name tabs by these ids (the app's tab titles)
TAB_IDS = {
    "activity": "Activity",
    "learning": "Learning",
    "convergence": "Convergence",
    "sweeps": "Sweeps",
    "sparsity": "Sparsity & latency",
    "editor": "Toy editor",
    "gradcheck": "Gradient check",
    "precision": "Precision",
    "code": "Code & export",
}
log = logging.getLogger(__name__)


def read_lessons(extra: str | os.PathLike | None = None) -> tuple[dict, list[LessonError]]:
    """The shipped lessons plus those of folder ``extra``, by id, and the files refused."""
    known = dict(presets=list_presets(), tabs=tuple(TAB_IDS))
    shipped, errors = load_lesson_dir(LESSON_DIR, **known)
    lessons: dict[str, Lesson] = {lesson.id: lesson for lesson in shipped}
    if extra:
        own, own_errors = load_lesson_dir(extra, **known)
        errors += own_errors
        for lesson in own:
            if lesson.id in lessons:
                errors.append(
                    LessonError(lesson.source, 0, f"id {lesson.id!r} is a shipped lesson's")
                )
            else:
                lessons[lesson.id] = lesson
    return lessons, errors


@functools.cache
def catalog() -> dict[str, Lesson]:
    """Every lesson this server offers (read once per process; refused files are logged)."""
    lessons, errors = read_lessons(os.environ.get(ENV) or None)
    for exc in errors:
        log.warning("lesson skipped: %s", exc)
    return lessons
