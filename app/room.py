"""The room: the participants of one ``batscope serve --room`` server, as the instructor sees them.

Plain Python, in-process, one per server (:func:`server_room`). Each participant session joins
when it opens and leaves when it is destroyed (``app/room_join.py``). The room reads a
participant's lesson, step, goal and run status live from their own objects; it never changes
them directly: every broadcast hands each participant a callable through that participant's
``schedule``, which runs it on the participant's own Bokeh document (their session's lock and
websocket), never from the instructor's callback.

The instructor's token is made per server by ``batscope serve --room`` (:func:`new_token`),
handed to the server process in ``BATSCOPE_ROOM_TOKEN`` (removed from the environment on first
read, so child processes do not inherit it) and compared in constant time (:func:`token_matches`).
"""

from __future__ import annotations

import functools
import hmac
import math
import os
import random
import secrets
import threading
from collections.abc import Callable

from .room_names import pick_name

TOKEN_ENV = "BATSCOPE_ROOM_TOKEN"


def new_token() -> str:
    """A fresh instructor token (URL-safe, 192 random bits)."""
    return secrets.token_urlsafe(24)


def token_matches(given, secret: str) -> bool:
    """Whether ``given`` is the instructor's ``secret``, compared in constant time
    (``hmac.compare_digest``: the time taken does not tell how much of a guess was right).
    A room without a secret admits nobody."""
    if not secret or not isinstance(given, str | bytes):
        return False
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(given, secret.encode("utf-8"))


def token_argument(session_args: dict) -> bytes:
    """The ``token`` query argument of a request (its first value), or b''."""
    values = session_args.get("token") or [b""]
    return values[0]


class Member:
    """One participant as the room sees them: a generated name, read access to their app
    (``progress``, ``controller``, ``preset``) and the way to run code on their document."""

    def __init__(self, name: str, app, schedule: Callable[[Callable[[], None]], None]):
        self.name = name
        self.app = app
        self._schedule = schedule

    @property
    def controller(self):
        return self.app.controller

    def row(self) -> dict:
        """The participant's line in the instructor's table (plain values, read now)."""
        p, c = self.app.progress, self.controller
        return {
            "name": self.name,
            "lesson": p.lesson,
            "step": p.step + 1 if p.lesson else 0,  # shown from 1; 0 outside a lesson
            "goal_met": p.goal_met,
            "preset": self.app.preset,
            "status": c.status,
            "epoch": c.epoch,
            "epochs": c.epochs,
            "accuracy": c.accuracy if math.isfinite(c.accuracy) else None,
        }

    def on_own_document(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` later, on this participant's own document."""
        self._schedule(fn)


class Room:
    """The participants connected to one server, and the instructor's broadcasts to them."""

    def __init__(self, token: str, rng: random.Random | None = None):
        self._token = token
        self._rng = rng or random.Random()
        self._members: dict[str, Member] = {}
        self._lock = threading.Lock()  # sessions may open on Bokeh's threads

    def admits(self, given) -> bool:
        """Whether ``given`` is this room's instructor token."""
        return token_matches(given, self._token)

    # -- membership -----------------------------------------------------------------------
    def join(self, app, schedule: Callable[[Callable[[], None]], None]) -> Member:
        """Add a participant's app under a fresh name; ``schedule(fn)`` must run ``fn`` on that
        participant's own document."""
        with self._lock:
            member = Member(pick_name(self._members, self._rng), app, schedule)
            self._members[member.name] = member
        return member

    def leave(self, member: Member) -> None:
        """Remove a participant (idempotent): their session was destroyed."""
        with self._lock:
            if self._members.get(member.name) is member:
                del self._members[member.name]

    @property
    def members(self) -> list[Member]:
        """The participants now, in order of arrival."""
        with self._lock:
            return list(self._members.values())

    def find(self, name: str) -> Member | None:
        with self._lock:
            return self._members.get(name)

    def rows(self) -> list[dict]:
        """Every participant's line, read now."""
        return [m.row() for m in self.members]

    # -- broadcasts: each runs on the participant's own document --------------------------
    def move_all(self, lesson: str, step: int) -> int:
        """Move everyone to ``step`` (from 0) of ``lesson``; returns how many were reached."""
        return self._broadcast(lambda app: app.progress.move_to(lesson, step))

    def preset_all(self, name: str) -> int:
        """Load preset ``name`` for everyone (as if each chose it in their Preset menu)."""
        return self._broadcast(lambda app: setattr(app, "preset", name))

    def pause_all(self) -> int:
        """Pause every running or queued training (a Pause click on each page)."""
        return self._broadcast(lambda app: app.controller.param.trigger("pause"))

    def _broadcast(self, change: Callable[[object], None]) -> int:
        members = self.members
        for m in members:
            m.on_own_document(functools.partial(change, m.app))
        return len(members)


@functools.cache
def server_room() -> Room | None:
    """This server's room (one per process), or None when the server does not serve a room.

    Made on first call from the token ``batscope serve --room`` put in ``BATSCOPE_ROOM_TOKEN``;
    the variable is removed so that no child process (a Dask worker, ...) inherits it.
    """
    token = os.environ.pop(TOKEN_ENV, "")
    return Room(token) if token else None
