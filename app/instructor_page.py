"""The instructor's page: the room's participants live, broadcasts to all, one participant on the
projector (``app/instructor.py`` serves it at ``/instructor``).

One periodic callback at 1 Hz reads every participant's line (13 param reads each: a room of 30
took 1.9 ms per tick on the shared 2-core VM at load 10, 0.2 % of a core) and sends the table
only when it changed. Broadcasts go through :class:`~batscope.app.room.Room`, which runs each
change on the participant's own document. Everything a participant controls (lesson ids, status
messages) is escaped.
"""

from __future__ import annotations

import html

import panel as pn
from batscope.training.limits import escape

from .lesson_catalog import catalog
from .presets import list_presets, load_preset
from .room import Room, token_argument
from .room_mirror import ParticipantMirror

PERIOD_MS = 1000
NO_LESSON = "— none: explore freely —"
TABLE_CSS = (
    ".room-table { border-collapse: collapse; }"
    ".room-table th, .room-table td { padding: 3px 12px; text-align: left; }"
    ".room-table tr:nth-child(even) { background: #f3f5f7; }"
)
COLUMNS = ("name", "lesson", "step", "goal", "preset", "run", "epoch", "train acc")
REFUSED = (
    "### This page needs the instructor's link\n\n"
    "Open the `instructor:` URL that `batscope serve --room` printed (it carries the token)."
)


def _cells(row: dict) -> tuple:
    acc = row["accuracy"]
    return (
        row["name"],
        row["lesson"] or "–",
        row["step"] or "–",
        ("met" if row["goal_met"] else "open") if row["lesson"] else "–",
        row["preset"],
        row["status"],
        f"{row['epoch']}/{row['epochs']}",
        "–" if acc is None else f"{100 * acc:.1f} %",
    )


def room_table_html(rows: list[dict]) -> str:
    """The participants' table as HTML, every cell escaped."""
    if not rows:
        return "<p>No participant connected yet.</p>"
    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in _cells(r)) + "</tr>"
        for r in rows
    )
    return f'<table class="room-table"><tr>{head}</tr>{body}</table>'


class InstructorPage(pn.viewable.Viewer):
    """The room's table, the broadcast controls and the projector's read-only copy."""

    def __init__(
        self, room: Room, lessons: dict | None = None, period_ms: int = PERIOD_MS, **params
    ):
        super().__init__(**params)
        self.room = room
        self.lessons = catalog() if lessons is None else lessons  # id -> Lesson
        self.count = pn.pane.Markdown(css_classes=["room-count"])
        self.table = pn.pane.HTML(
            css_classes=["room-participants"], sizing_mode="stretch_width", stylesheets=[TABLE_CSS]
        )
        self.feedback = pn.pane.Markdown(css_classes=["room-feedback"])
        presets = {load_preset(n).title: n for n in list_presets()}
        self.preset = pn.widgets.Select(
            label="Preset", options=presets, width=420, css_classes=["room-preset"]
        )
        self.preset_all = pn.widgets.Button(label="Load it for everyone", color="primary")
        self.lesson = pn.widgets.Select(
            label="Lesson",
            options={NO_LESSON: "", **{f"{v.title} ({k})": k for k, v in self.lessons.items()}},
            width=360,
            css_classes=["room-lesson"],
        )
        self.step = pn.widgets.IntInput(
            label="step", value=1, start=1, end=1, width=90, css_classes=["room-step"]
        )
        self.move_all = pn.widgets.Button(label="Move everyone there", color="primary")
        self.pause_all = pn.widgets.Button(label="❚❚ Pause all trainings", color="warning")
        self.watch = pn.widgets.Select(
            label="On the projector", options=[""], width=260, css_classes=["room-watch"]
        )
        self.mirror = ParticipantMirror()
        self.preset_all.on_click(self._on_preset_all)
        self.move_all.on_click(self._on_move_all)
        self.pause_all.on_click(self._on_pause_all)
        self.watch.param.watch(self._on_watch, "value")
        self.lesson.param.watch(self._on_lesson, "value")
        self._layout = pn.Column(
            pn.pane.Markdown("## The room"),
            self.count,
            self.table,
            pn.Row(self.preset, self.preset_all),
            pn.Row(self.lesson, self.step, self.move_all),
            self.pause_all,
            self.feedback,
            pn.pane.Markdown("## One participant, read-only"),
            self.watch,
            self.mirror,
            sizing_mode="stretch_width",
        )
        self.refresh()
        self._cb = pn.state.add_periodic_callback(self._tick, period=period_ms)
        if pn.state.curdoc is not None:
            pn.state.on_session_destroyed(lambda session_context: self._cb.stop())

    # -- the live table ---------------------------------------------------------------------
    def _tick(self) -> None:
        with pn.io.hold():
            self.refresh()

    def refresh(self) -> None:
        """Read the room now: the table, the projector's choices and its copy."""
        rows = self.room.rows()
        n = len(rows)
        self.count.object = f"{n} participant{'s' if n != 1 else ''} connected"
        table = room_table_html(rows)
        if table != self.table.object:
            self.table.object = table
        names = ["", *(r["name"] for r in rows)]
        if names != self.watch.options:
            self.watch.options = names  # a participant who left is no longer offered
        if self.mirror.member is not None and self.room.find(self.mirror.member.name) is None:
            self.watch.value = ""
        self.mirror.refresh()

    def _on_watch(self, event) -> None:
        self.mirror.follow(self.room.find(event.new) if event.new else None)

    # -- broadcasts -------------------------------------------------------------------------
    def _on_preset_all(self, event) -> None:
        name = self.preset.value
        n = self.room.preset_all(name)
        self.feedback.object = f"Preset *{load_preset(name).title}* sent to {n} participant(s)."

    def _on_lesson(self, event) -> None:
        lesson = self.lessons.get(event.new)
        self.step.end = len(lesson.steps) if lesson is not None else 1
        self.step.value = 1

    def _on_move_all(self, event) -> None:
        lesson_id, step = self.lesson.value, self.step.value
        lesson = self.lessons.get(lesson_id)
        if lesson_id and (lesson is None or not 1 <= step <= len(lesson.steps)):
            self.feedback.object = "**step**: choose a step of the lesson (from 1)."
            return
        n = self.room.move_all(lesson_id, step - 1 if lesson_id else 0)
        where = f"step {step} of {lesson.title}" if lesson_id else "free exploration"
        self.feedback.object = f"Moved {n} participant(s) to {escape(where)}."

    def _on_pause_all(self, event) -> None:
        n = self.room.pause_all()
        self.feedback.object = f"Pause sent to {n} participant(s)."

    def __panel__(self):
        return self._layout


def instructor_app(room: Room | None, session_args: dict):
    """The page for a request with ``session_args``: the room, or a refusal showing no
    participant data when the server has no room or the token is not the room's."""
    if room is None or not room.admits(token_argument(session_args)):
        return pn.pane.Markdown(REFUSED, css_classes=["room-refused"])
    return InstructorPage(room)
