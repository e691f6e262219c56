"""The instructor's page without a server: refused without the token, the table escaped, the
broadcast buttons, the gate's callback and log filter, and the projector's read-only copy."""

from __future__ import annotations

import logging
import random
import time

import pytest

pn = pytest.importorskip("panel")

from batscope.app.room import Room, new_token  # noqa: E402
from batscope.training.controller import TrainingController  # noqa: E402
from batscope.training.state import NetworkSpec, TrainingConfig, ViewConfig  # noqa: E402

from .fakes import FakeTrainer  # noqa: E402
from .test_room import Document, FakeApp  # noqa: E402


@pytest.fixture
def room():
    return Room(new_token(), rng=random.Random(0))


def test_on_document_runs_later_with_that_document_current():
    from batscope.app.room_join import on_document
    from bokeh.document import Document as BokehDocument

    doc, seen = BokehDocument(), []
    on_document(doc, lambda: seen.append(pn.state.curdoc))
    assert seen == []  # nothing runs in the caller's callback
    (callback,) = doc.session_callbacks
    callback.callback()
    assert seen == [doc]


def test_the_page_is_refused_without_the_right_token(room):
    from batscope.app.instructor_page import InstructorPage, instructor_app

    member = room.join(FakeApp(), Document().schedule)
    for args in ({}, {"token": [b"wrong"]}, {"token": [b""]}):
        page = instructor_app(room, args)
        assert not isinstance(page, InstructorPage)
        assert member.name not in page.object
    assert not isinstance(instructor_app(None, {"token": [b"x"]}), InstructorPage)
    page = instructor_app(room, {"token": [room._token.encode()]})
    assert isinstance(page, InstructorPage)
    assert member.name in page.table.object
    page._cb.stop()


def test_the_gate_refuses_only_the_instructor_page(room, monkeypatch):
    from batscope.app import room_gate

    authorize = room_gate.instructor_authorizer(room)
    args = {}
    monkeypatch.setattr(type(pn.state), "session_args", property(lambda self: args))
    assert authorize(None, "/main") and authorize(None, "/")
    assert not authorize(None, "/instructor") and not authorize(None, "/prefix/instructor/")
    args["token"] = [b"guess"]
    assert not authorize(None, "/instructor")
    args["token"] = [room._token.encode()]
    assert authorize(None, "/instructor")


class _Records(logging.Handler):
    """Keeps the formatted messages it is handed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_the_token_never_reaches_a_log(room):
    from batscope.app import room_gate
    from batscope.app.room_gate import install

    secret = room._token
    names = ("tornado.access", "panel.viewable.Location", "x")
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]  # other tests (a served app) change these levels
    records = _Records()
    previous = install(room)
    try:
        for lg in loggers:
            lg.setLevel(logging.DEBUG)
            lg.addHandler(records)
        access = logging.getLogger("tornado.access")
        access.info("%d %s %.2fms", 200, f"GET /instructor?token={secret}&x=1 (::1)", 3.0)
        events = {"href": f"http://h:1/instructor?token={secret}"}
        logging.getLogger("panel.viewable.Location").debug("received events %s", events)
        logging.getLogger("x").info("no %s here", "secret")
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(records)
            lg.setLevel(level)
        logging.setLogRecordFactory(previous)
        room_gate.set_authorizer(None)
    text = "\n".join(records.messages)
    assert len(records.messages) == 3
    assert secret not in text
    assert "token=…&x=1 (::1) 3.00ms" in text and "token=…'}" in text
    assert "no secret here" in text


def test_the_gate_is_the_whole_process_even_when_installed_inside_a_session(room, monkeypatch):
    """Set while a document is current, Panel would keep the callback for that document only:
    every other request would pass the gate."""
    from batscope.app import room_gate
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    previous = logging.getLogRecordFactory()
    try:
        with set_curdoc(Document()):
            room_gate.install(room)
        gate = pn.config.authorize_callback  # read outside any session
        assert gate is not None
        monkeypatch.setattr(type(pn.state), "session_args", property(lambda self: {}))
        assert not gate(None, "/instructor") and gate(None, "/main")  # no token: refused
    finally:
        logging.setLogRecordFactory(previous)
        room_gate.set_authorizer(None)
    assert pn.config.authorize_callback is None


def make_page(room):
    from batscope.app.instructor_page import InstructorPage

    page = InstructorPage(room)
    page._cb.stop()
    return page


def test_the_table_escapes_what_participants_control(room):
    app = FakeApp()
    member = room.join(app, Document().schedule)
    app.progress.move_to("<script>alert(1)</script>", 0)
    page = make_page(room)
    page.refresh()
    assert "<script>" not in page.table.object and "&lt;script&gt;" in page.table.object
    assert member.name in page.table.object and "1 participant connected" in page.count.object
    assert page.watch.options == ["", member.name]


def test_buttons_broadcast_through_each_document(room):
    docs = [Document() for _ in range(2)]
    apps = [FakeApp() for _ in docs]
    for app, doc in zip(apps, docs, strict=True):
        room.join(app, doc.schedule)
    page = make_page(room)
    page.preset.value = "mnist-multi"
    page.preset_all.clicks += 1
    page.lesson.value = "convergence"
    assert page.step.end == len(page.lessons["convergence"].steps) == 3
    page.step.value = 3
    page.move_all.clicks += 1
    page.pause_all.clicks += 1
    assert [len(d.pending) for d in docs] == [3, 3]  # preset, move, pause
    assert all(a.preset == "convergence" and a.controller.status == "running" for a in apps)
    for doc in docs:
        doc.tick()
    for app in apps:
        assert app.preset == "mnist-multi" and app.controller.status == "paused"
        assert (app.progress.lesson, app.progress.step) == ("convergence", 2)
    page.lesson.value = ""  # back to free exploration
    page.move_all.clicks += 1
    for doc in docs:
        doc.tick()
    assert all(a.progress.lesson == "" for a in apps)


def test_a_step_outside_the_lesson_is_refused(room):
    doc = Document()
    room.join(FakeApp(), doc.schedule)
    page = make_page(room)
    page.lesson.value = "convergence"
    page.step.param.update(end=10, value=4)  # past the lesson's 3 steps
    page.move_all.clicks += 1
    assert "**step**" in page.feedback.object and doc.pending == []


def test_a_participant_who_leaves_leaves_the_table(room):
    member = room.join(Participant(), Document().schedule)
    page = make_page(room)
    page.watch.value = member.name
    assert page.mirror.member is member
    room.leave(member)
    page.refresh()
    assert member.name not in page.table.object and page.watch.options == [""]
    assert page.mirror.member is None


class Participant:
    """A participant's app with a real controller on a fake trainer."""

    def __init__(self):
        self.progress = FakeApp().progress
        self.preset = "convergence"
        self.controller = TrainingController(
            NetworkSpec(),
            TrainingConfig(epochs=50),
            ViewConfig(),
            lambda c: FakeTrainer(c, delay=0.002),
            run_options={"interval_s": 0.0},
        )


def poll_until(ctrl, pred, timeout=5.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "condition not reached in time"
        ctrl.poll()  # the participant's own session does this
        time.sleep(0.005)


def test_the_projector_copy_reads_without_taking_updates(room, monkeypatch):
    from batscope.app.room_mirror import ParticipantMirror

    part = Participant()
    ctrl = part.controller
    member = room.join(part, Document().schedule)
    mirror = ParticipantMirror()
    try:
        ctrl.param.trigger("start")
        poll_until(ctrl, lambda: len(ctrl.history) >= 10)
        ctrl.param.trigger("pause")
        poll_until(ctrl, lambda: ctrl.status == "paused")

        def no_poll():
            raise AssertionError("the copy took the participant's updates")

        monkeypatch.setattr(ctrl, "poll", no_poll)
        mirror.follow(member)
        assert mirror.metrics.series["train"].size == len(ctrl.history)
        assert mirror.raster._activity is ctrl.last.activity
        assert member.name in mirror.status.object and "status: paused" in mirror.status.object
        mirror.refresh()  # nothing new: nothing appended twice
        assert mirror.metrics.series["train"].size == len(ctrl.history)
        monkeypatch.undo()
        ctrl.param.trigger("start")
        poll_until(ctrl, lambda: len(ctrl.history) >= 20)
        mirror.refresh()
        assert mirror.metrics.series["train"].size == len(ctrl.history)
        ctrl.param.trigger("reset")
        mirror.refresh()
        assert mirror.metrics.series["train"].size == 0 and "status: idle" in mirror.status.object
        assert mirror.view_config is not ctrl.view  # its raster's buttons change only the copy
    finally:
        ctrl.shutdown()
