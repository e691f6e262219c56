"""The room registry: joining and leaving, names, the token check, broadcasts that run only on
each participant's own document, and the instructor's page refused without the token."""

from __future__ import annotations

import hmac
import math
import random

import param
import pytest
from batscope.app.room import Room, new_token, token_matches
from batscope.app.room_names import ADJECTIVES, ANIMALS, pick_name
from batscope.training.lesson_progress import LessonProgress


class FakeController(param.Parameterized):
    """What the room reads of a TrainingController, and its Pause event."""

    pause = param.Event()
    status = param.String("running")
    epoch = param.Integer(3)
    epochs = param.Integer(50)
    accuracy = param.Number(0.5)

    @param.depends("pause", watch=True)
    def _on_pause(self):
        self.status = "paused"


class FakeApp(param.Parameterized):
    """A participant's app as the room sees it: progress, controller, preset."""

    preset = param.Selector(default="convergence", objects=["convergence", "mnist-multi"])

    def __init__(self, **params):
        super().__init__(**params)
        self.progress = LessonProgress()
        self.controller = FakeController()


class Document:
    """Stands for a participant's Bokeh document: scheduled callables wait for its tick."""

    def __init__(self):
        self.pending = []

    def schedule(self, fn):
        self.pending.append(fn)

    def tick(self):
        pending, self.pending = self.pending, []
        for fn in pending:
            fn()


@pytest.fixture
def room():
    return Room(new_token(), rng=random.Random(0))


def join(room, n):
    out = []
    for _ in range(n):
        app, doc = FakeApp(), Document()
        out.append((room.join(app, doc.schedule), app, doc))
    return out


def test_join_and_leave(room):
    (a, _, _), (b, _, _) = join(room, 2)
    assert room.members == [a, b]
    room.leave(a)
    assert room.members == [b] and room.find(a.name) is None
    room.leave(a)  # twice: nothing more happens
    room.leave(b)
    assert room.members == []


def test_names_are_unique_and_generated(room):
    members = [m for m, _, _ in join(room, 60)]
    names = [m.name for m in members]
    assert len(set(names)) == 60
    for name in names:
        adjective, animal = name.split("-")
        assert adjective in ADJECTIVES and animal in ANIMALS


def test_a_name_stays_unique_when_every_pair_is_taken():
    taken = {f"{a}-{b}" for a in ADJECTIVES for b in ANIMALS}
    rng = random.Random(1)
    first = pick_name(taken, rng)
    assert first not in taken and first.endswith("-2")
    taken.add(first)
    assert pick_name(taken, rng) not in taken


def test_rows_read_the_participant_live(room):
    ((member, app, _),) = join(room, 1)
    row = room.rows()[0]
    assert row["name"] == member.name and row["lesson"] == "" and row["step"] == 0
    assert (row["status"], row["epoch"], row["epochs"], row["accuracy"]) == ("running", 3, 50, 0.5)
    app.progress.move_to("one-neuron", 2)
    app.progress.goal_met = True
    app.controller.accuracy = math.nan
    row = room.rows()[0]
    assert (row["lesson"], row["step"], row["goal_met"]) == ("one-neuron", 3, True)
    assert row["accuracy"] is None


def test_token_check_is_constant_time(monkeypatch):
    secret = new_token()
    calls, compare = [], hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert token_matches(secret, secret)
    assert token_matches(secret.encode(), secret)  # a request argument comes as bytes
    assert not token_matches(secret[:-1], secret)
    assert not token_matches(secret + "x", secret)
    assert not token_matches("é" + secret[1:], secret)
    assert len(calls) == 5  # every comparison went through compare_digest
    assert not token_matches(None, secret) and not token_matches("", "")
    assert len(new_token()) >= 32 and new_token() != new_token()


def test_room_admits_only_its_token(room):
    other = Room(new_token())
    assert not room.admits(other._token) and other.admits(other._token)
    assert not Room("").admits("")  # no secret: nobody


@pytest.mark.parametrize(
    ("broadcast", "changed"),
    [
        (lambda r: r.pause_all(), lambda app: app.controller.status == "paused"),
        (lambda r: r.preset_all("mnist-multi"), lambda app: app.preset == "mnist-multi"),
        (
            lambda r: r.move_all("spike-time", 1),
            lambda app: (app.progress.lesson, app.progress.step) == ("spike-time", 1),
        ),
    ],
)
def test_broadcasts_run_on_each_participants_document(room, broadcast, changed):
    joined = join(room, 3)
    assert broadcast(room) == 3
    for _, app, doc in joined:
        assert len(doc.pending) == 1  # scheduled on that participant's document
        assert not changed(app)  # and nothing done from the instructor's callback
    for _, app, doc in joined:
        doc.tick()
        assert changed(app)


def test_a_move_opens_the_new_steps_goal(room):
    ((_, app, doc),) = join(room, 1)
    app.progress.param.update(lesson="spike-time", step=0, goal_met=True, hints_shown=2)
    room.move_all("spike-time", 1)
    doc.tick()
    assert app.progress.to_dict() == {
        "lesson": "spike-time",
        "step": 1,
        "goal_met": False,
        "hints_shown": 0,
    }


def test_a_participant_who_left_gets_no_broadcast(room):
    (a, _, doc_a), (_, _, doc_b) = join(room, 2)
    room.leave(a)
    assert room.pause_all() == 1
    assert doc_a.pending == [] and len(doc_b.pending) == 1


def test_the_room_keeps_nothing_of_a_participant_who_left(room):
    import gc
    import weakref

    app, doc = FakeApp(), Document()
    member = room.join(app, doc.schedule)
    gone = weakref.ref(app), weakref.ref(doc)
    room.leave(member)
    del app, doc, member
    gc.collect()
    assert [ref() for ref in gone] == [None, None]
