"""A workshop room served: the instructor's broadcasts reach two participant tabs, the
instructor's page is refused without its token, a participant sees nothing of another, a closed
tab leaves the room, and ``batscope serve --room`` prints the two URLs."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

import pytest

pytest.importorskip("playwright")

from batscope.app.lesson_catalog import catalog  # noqa: E402

from .conftest import (  # noqa: E402
    click,
    open_app,
    serve_in_process,
    status,
    stop_apps,
    stop_process_group,
    wait_until,
)


class RoomServed:
    """The participants' app at /main and the instructor's page at /instructor, served
    in-process behind the room's gate, as ``batscope serve --room`` serves them."""

    def __init__(self):
        import batscope.app.warm  # noqa: F401  (compiles the kernels once, as `--setup` does)
        import panel as pn
        from batscope.app.factory import create_app
        from batscope.app.instructor_page import instructor_app
        from batscope.app.room import Room, new_token
        from batscope.app.room_gate import install
        from batscope.app.room_join import join_room

        self.token = new_token()
        self.room = Room(self.token)
        self.log_records = install(self.room)  # the log-record factory it replaced
        self.apps = []

        def participant():
            app = create_app()
            join_room(self.room, app)
            self.apps.append(app)
            return app.template

        self.instructor_pages = []  # what each instructor session was given

        def instructor():
            self.instructor_pages.append(instructor_app(self.room, pn.state.session_args))
            return self.instructor_pages[-1]

        self.server, self.url = serve_in_process({"main": participant, "instructor": instructor})
        self.instructor_url = f"{self.url}/instructor?token={self.token}"

    def stop(self):
        from batscope.app.room_gate import set_authorizer

        stop_apps(self.apps)
        self.server.stop()
        set_authorizer(None)
        logging.setLogRecordFactory(self.log_records)


@pytest.fixture(scope="module")
def room_served():
    s = RoomServed()
    yield s
    s.stop()


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def participant_name(page) -> str:
    text = page.locator(".room-name p").first.inner_text()
    return re.search(r"In the room as (\S+)", text).group(1)


def open_participant(context, url: str):
    page = open_app(context.new_page(), url)
    page.locator(".room-name").first.wait_for(timeout=30_000)
    return page, participant_name(page)


def table_text(page) -> str:
    return page.locator(".room-participants table").first.inner_text()


def test_instructor_broadcasts_reach_two_participant_tabs(room_served, guarded, context):
    s = room_served
    a, name_a = open_participant(context, s.url + "/main?epochs=100000")
    b, name_b = open_participant(context, s.url + "/main?epochs=100000")
    apps = {m.name: m.app for m in s.room.members}
    app_a, app_b = apps[name_a], apps[name_b]
    teacher = guarded
    teacher.goto(s.instructor_url)
    wait_until(lambda: name_a in table_text(teacher) and name_b in table_text(teacher), 30)

    # pause all: both runs stop, each on its own page
    for page in (a, b):
        click(page, "▶ Play")
    wait_until(lambda: status(a)["status"] == "running" and status(b)["status"] == "running", 60)
    click(teacher, "❚❚ Pause all trainings")
    wait_until(lambda: status(a)["status"] == "paused" and status(b)["status"] == "paused", 30)
    wait_until(lambda: table_text(teacher).count("paused") == 2, 10)

    # a preset for everyone: each participant's sidebar shows it
    teacher.locator(".room-preset select").select_option(
        label="Convergence task, single-spike TTFS (paper Fig. 3)"
    )
    click(teacher, "Load it for everyone")
    wait_until(lambda: app_a.preset == app_b.preset == "convergence-ttfs")
    for page in (a, b):
        info = page.locator(".preset-info p").first
        wait_until(lambda i=info: "single-spike TTFS" in i.inner_text())
    assert app_a.training.loss == "ttfs_ce"

    # a lesson step for everyone: each participant's step bar follows
    title = catalog()["convergence"].title
    teacher.locator(".room-lesson select").select_option(label=f"{title} (convergence)")
    instructor = s.instructor_pages[-1]
    wait_until(lambda: instructor.step.end == 3)  # the step's bound follows the lesson
    box = teacher.locator(".room-step input")

    def step_two():  # typed again until the page's new bound has reached the browser
        box.fill("2")
        box.press("Enter")
        time.sleep(0.3)
        return instructor.step.value == 2

    wait_until(step_two, 15, 0.2)
    click(teacher, "Move everyone there")
    wait_until(lambda: all(x.progress.to_dict()["step"] == 1 for x in (app_a, app_b)))
    assert app_a.progress.lesson == app_b.progress.lesson == "convergence"
    for page in (a, b):
        bar = page.locator(".lesson-step p").first
        wait_until(lambda s=bar: s.inner_text().startswith("Step 2 of 3"))
    wait_until(lambda: table_text(teacher).count("convergence\t2\t") == 2, 10)

    # one participant on the projector, read-only: their run, not their controls
    teacher.locator(".room-watch select").select_option(name_a)
    mirror = teacher.locator(".mirror-status p").first
    wait_until(lambda: name_a in mirror.inner_text() and "status: paused" in mirror.inner_text())
    steps = app_a.controller.steps
    wait_until(lambda: f"step {steps}" in mirror.inner_text())
    assert teacher.get_by_role("button", name="▶ Play").count() == 0
    assert app_a.controller.status == "paused" and app_a.controller.steps == steps
    assert teacher.errors == []


def test_the_instructor_page_is_refused_without_its_token(room_served, page):
    s = room_served
    _, name = open_participant(page.context, s.url + "/main")
    assert http_status(f"{s.url}/instructor") == 403
    assert http_status(f"{s.url}/instructor?token=wrong") == 403
    assert http_status(f"{s.url}/instructor?token={s.token[:-1]}") == 403
    assert http_status(s.instructor_url) == 200
    # a session made past the page's gate (here by its autoload script) checks the token again
    # and holds no participant
    n = len(s.instructor_pages)
    script = f"{s.url}/instructor/autoload.js?bokeh-autoload-element=x&bokeh-app-path=/instructor"
    assert http_status(script) == 200
    (refused,) = s.instructor_pages[n:]
    assert "needs the instructor" in refused.object and name not in refused.object
    response = page.goto(f"{s.url}/instructor?token=not-{s.token}")
    assert response.status == 403
    assert name not in page.content()


def test_a_participant_sees_nothing_of_another(room_served, context):
    s = room_served
    frames = []

    def record(ws):
        ws.on("framereceived", lambda payload: frames.append(payload))

    spy = context.new_page()
    spy.on("websocket", record)
    open_app(spy, s.url + "/main")
    spy.locator(".room-name").first.wait_for(timeout=30_000)
    own = participant_name(spy)
    _, other = open_participant(context, s.url + "/main")
    click(spy, "Step ›")
    wait_until(lambda: status(spy)["steps"] >= 1, 60)
    texts = [f if isinstance(f, str) else f.decode("utf-8", "replace") for f in frames]
    assert any(own in t for t in texts)  # the recording saw this page's document
    for t in [*texts, spy.content(), spy.url]:
        assert other not in t and s.token not in t
    assert spy.request.get(f"{s.url}/instructor").status == 403


def test_a_closed_tab_leaves_the_room(room_served, context):
    s = room_served
    page, name = open_participant(context, s.url + "/main")
    assert s.room.find(name) is not None
    page.close()
    wait_until(lambda: s.room.find(name) is None, 30)


@pytest.fixture
def cli_room():
    cmd = [sys.executable, "-m", "batscope.app", "serve", "--room", "--port", "0", "--no-warm"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        wait_until(lambda: any("Bokeh app running at" in x for x in lines), 120)
        yield lines
    finally:
        stop_process_group(proc)


def on_this_machine(url: str) -> str:
    u = urlparse(url)
    return u._replace(netloc=f"127.0.0.1:{u.port}").geturl()


def test_cli_room_prints_both_urls_and_gates_the_instructor(cli_room, guarded, context):
    participants = next(x for x in cli_room if x.startswith("participants: http"))
    instructor = next(x for x in cli_room if x.startswith("instructor: http"))
    main_url = on_this_machine(participants.split(": ", 1)[1].strip())
    teacher_url = on_this_machine(instructor.split(": ", 1)[1].strip())
    token = re.search(r"token=([\w-]+)$", teacher_url).group(1)
    assert urlparse(main_url).path == "/main" and urlparse(teacher_url).path == "/instructor"
    assert http_status(main_url) == 200
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert http_status(teacher_url.replace(token, wrong)) == 403
    assert http_status(teacher_url.split("?")[0]) == 403
    assert http_status(teacher_url) == 200
    # the served scripts: a participant joins, the instructor's page lists them
    _, name = open_participant(context, main_url)
    guarded.goto(teacher_url)
    wait_until(lambda: name in table_text(guarded), 60)
    assert guarded.errors == []
    wait_until(lambda: any("/instructor" in x and "GET" in x for x in cli_room), 10)
    assert [x for x in cli_room if token in x] == [instructor]  # printed once, never logged
