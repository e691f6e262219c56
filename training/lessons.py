"""Lessons: ordered steps of text, a preset, the controls and tabs shown, a goal and hints
(no Panel).

A lesson file is JSON (``format: batscope-lesson``, ``version: 1``; docs/lessons.md §2). Files are
untrusted, a teacher's as much as a download's: the size is checked before parsing, the JSON
decoder's line and column are reported for a syntax error, and every field is checked against the
schema with its path and bound (``steps[2].goal.at_least: 120 is outside [0, 100]``). A file
that fails is refused whole, as a :class:`LessonError` naming the file, the line and the reason.
Which presets, tabs and controls exist is the app's to say: the loader takes them as arguments.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .lesson_goals import goal_from_dict
from .lesson_progress import MAX_STEPS
from .state import LayerSpec, TrainingConfig

FORMAT = "batscope-lesson"
VERSION = 1
MAX_FILE_BYTES = 256 * 1024
MAX_TEXT_CHARS = 4000
MAX_HINTS = 8
MAX_LESSONS = 100  # files read from one folder
LESSON_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
#: the sidebar controls a step may show (TrainingConfig fields and ``layer.<field>``)
CONTROLS = frozenset(TrainingConfig.FIELDS) | {f"layer.{f}" for f in LayerSpec.FIELDS}


class LessonError(ValueError):
    """A lesson file that is refused: ``source``, ``line`` (0 when unknown) and ``reason``."""

    def __init__(self, source: str, line: int, reason: str):
        self.source, self.line, self.reason = source, line, reason
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Step:
    title: str
    text: str  # Markdown, rendered without raw HTML
    goal: object  # a goal of training.lesson_goals
    hints: tuple[str, ...] = ()
    preset: str | None = None  # applied when the step is entered; None keeps the setup
    tabs: tuple[str, ...] = ()  # tab ids shown (the first is opened); () shows every tab
    controls: tuple[str, ...] | None = None  # sidebar controls shown; None: the preset's


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    summary: str
    steps: tuple[Step, ...]
    source: str = ""


def _text(d: dict, key: str, path: str, limit: int, required: bool = True) -> str:
    if key not in d:
        if required:
            raise ValueError(f"{path}.{key}: required")
        return ""
    v = d[key]
    if not isinstance(v, str) or (required and not v.strip()) or len(v) > limit:
        raise ValueError(f"{path}.{key}: must be a text of 1 to {limit} characters")
    return v


def _names(value, path: str, known, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > limit:
        raise ValueError(f"{path}: must be a list of at most {limit} names")
    for i, v in enumerate(value):
        if not isinstance(v, str) or v not in known:
            raise ValueError(f"{path}[{i}]: {str(v)[:40]!r} is not one of {sorted(known)}")
    return tuple(dict.fromkeys(value))


def _step(d, path: str, presets, tabs) -> Step:
    if not isinstance(d, dict):
        raise ValueError(f"{path}: must be an object")
    allowed = {"title", "text", "goal", "hints", "preset", "tabs", "controls"}
    for key in d:
        if key not in allowed:
            raise ValueError(f"{path}.{str(key)[:40]}: unknown field; known: {sorted(allowed)}")
    preset = d.get("preset")
    if preset is not None and preset not in presets:
        raise ValueError(f"{path}.preset: {str(preset)[:40]!r} is not one of {sorted(presets)}")
    hints = d.get("hints", [])
    if not isinstance(hints, list) or len(hints) > MAX_HINTS:
        raise ValueError(f"{path}.hints: must be a list of at most {MAX_HINTS} texts")
    for i, h in enumerate(hints):
        if not isinstance(h, str) or not h.strip() or len(h) > MAX_TEXT_CHARS:
            raise ValueError(f"{path}.hints[{i}]: must be a text of 1 to {MAX_TEXT_CHARS} chars")
    return Step(
        title=_text(d, "title", path, 120),
        text=_text(d, "text", path, MAX_TEXT_CHARS),
        goal=goal_from_dict(d.get("goal"), f"{path}.goal", tabs),
        hints=tuple(hints),
        preset=preset,
        tabs=_names(d.get("tabs", []), f"{path}.tabs", set(tabs), len(tabs)),
        controls=(
            _names(d["controls"], f"{path}.controls", CONTROLS, len(CONTROLS))
            if "controls" in d
            else None
        ),
    )


def lesson_from_dict(d, presets=(), tabs=(), source: str = "") -> Lesson:
    """Check a decoded lesson against the schema (``ValueError`` with the field path)."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ValueError(f"format: must be {FORMAT!r}")
    if d.get("version") != VERSION:
        raise ValueError(f"version: {str(d.get('version'))[:20]} is not supported (only {VERSION})")
    allowed = {"format", "version", "id", "title", "summary", "steps"}
    for key in d:
        if key not in allowed:
            raise ValueError(f"{str(key)[:40]}: unknown field; known: {sorted(allowed)}")
    lesson_id = d.get("id")
    if not isinstance(lesson_id, str) or not LESSON_ID.fullmatch(lesson_id):
        raise ValueError("id: must be 1 to 40 of a-z, 0-9 and '-', starting with a letter or digit")
    steps = d.get("steps")
    if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
        raise ValueError(f"steps: must be a list of 1 to {MAX_STEPS} steps")
    return Lesson(
        id=lesson_id,
        title=_text(d, "title", "lesson", 120),
        summary=_text(d, "summary", "lesson", MAX_TEXT_CHARS, required=False),
        steps=tuple(_step(s, f"steps[{i}]", presets, tabs) for i, s in enumerate(steps)),
        source=source,
    )


def _step_line(text: str, n: int) -> int:
    """The 0-based line where step ``n``'s object opens in the file, or -1."""
    at = text.find('"steps"')
    start = text.find("[", at) if at >= 0 else -1
    if start < 0:
        return -1
    depth, count, in_str, escaped = 0, -1, False, False
    for pos in range(start, len(text)):
        ch = text[pos]
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if ch == "{" and depth == 2:
                count += 1
                if count == n:
                    return text.count("\n", 0, pos)
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                break
    return -1


def _line_of(text: str, message: str) -> int:
    """The line a schema error's field path (``steps[2].goal.at_least: ...``) points at: the
    last key of the path, searched from the line where its step opens (best effort)."""
    path = message.split(":", 1)[0]
    m = re.match(r"steps\[(\d+)\]", path)
    start = max(_step_line(text, int(m.group(1))), 0) if m else 0
    keys = [k for k in re.findall(r"[A-Za-z_]\w*", path) if k not in ("steps", "lesson")]
    lines = text.splitlines()
    for key in reversed(keys):  # a dotted key ("training.lr") is found by either part
        for i in range(start, len(lines)):
            if f'"{key}"' in lines[i] or f'"{key}.' in lines[i] or f'.{key}"' in lines[i]:
                return i + 1
    return start + 1


def parse_lesson(text: str, source: str = "<lesson>", presets=(), tabs=()) -> Lesson:
    """A lesson from the text of its file, or :class:`LessonError` with the line and reason."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise LessonError(source, 0, f"larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LessonError(
            source, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})"
        ) from None
    except RecursionError:
        raise LessonError(source, 0, "nested too deep") from None
    try:
        return lesson_from_dict(d, presets, tabs, source)
    except ValueError as exc:
        raise LessonError(source, _line_of(text, str(exc)), str(exc)) from None


def load_lesson_file(path, presets=(), tabs=()) -> Lesson:
    path = Path(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LessonError(path.name, 0, f"larger than {MAX_FILE_BYTES // 1024} KiB")
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LessonError(path.name, 0, f"cannot be read: {exc}") from None
    return parse_lesson(text, str(path), presets, tabs)


def load_lesson_dir(folder, presets=(), tabs=()) -> tuple[list[Lesson], list[LessonError]]:
    """Every ``*.json`` lesson of ``folder`` (sorted by name), and the errors of those refused
    (a second lesson with an id already read is refused too)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [], [LessonError(str(folder), 0, "is not a folder")]
    lessons, errors, seen = [], [], set()
    files = sorted(folder.glob("*.json"))
    if len(files) > MAX_LESSONS:
        reason = f"more than {MAX_LESSONS} lessons: only the first {MAX_LESSONS} are read"
        errors.append(LessonError(str(folder), 0, reason))
        files = files[:MAX_LESSONS]
    for f in files:
        try:
            lesson = load_lesson_file(f, presets, tabs)
        except LessonError as exc:
            errors.append(exc)
            continue
        if lesson.id in seen:
            errors.append(LessonError(str(f), 0, f"id {lesson.id!r} is already used"))
            continue
        seen.add(lesson.id)
        lessons.append(lesson)
    return lessons, errors
