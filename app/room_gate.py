"""The instructor page's gate, in front of the page: HTTP 403 without the room's token.

``batscope serve --room`` passes ``--plugins batscope.app.room_gate`` to ``panel serve``, which
imports this module in the server process before it starts (a Panel plugin must declare
``ROUTES``: the gate adds none). Importing it installs, for this server's room:

- Panel's ``authorize_callback`` (checked on every page request before a session is made): a
  request for ``/instructor`` whose ``token`` argument is not the room's answers 403 and builds
  nothing; every other page passes. The instructor script checks the token again
  (``instructor_page.instructor_app``), for a session opened over the websocket directly.
- A log-record factory that blanks the token wherever a log message would carry it (Tornado's
  request log, Panel's debug events): it is never logged.
"""

from __future__ import annotations

import logging
import re

import panel as pn
import param

from .room import Room, server_room, token_argument

ROUTES: list = []
INSTRUCTOR_PATH = "/instructor"
_TOKEN_IN_URL = re.compile(r"(token=)[^&\s#'\"]*")


def instructor_authorizer(room: Room):
    """The ``authorize_callback`` for ``room``: pages other than the instructor's pass; the
    instructor's needs the room's token."""

    def authorize(user_info, path: str) -> bool:
        if not path.rstrip("/").endswith(INSTRUCTOR_PATH):
            return True
        return room.admits(token_argument(pn.state.session_args))

    return authorize


def redact(text: str) -> str:
    """``text`` with the value of every ``token=`` blanked."""
    return _TOKEN_IN_URL.sub(r"\1…", text)


def redacting(factory):
    """A log-record factory that makes records with ``factory`` and blanks any ``token=``
    value in their message (the request log's URLs, Panel's debug events with the page's URL)."""

    def make(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: left to logging to report
            return record
        if "token=" in text:
            record.msg, record.args = redact(text), None
        return record

    return make


def set_authorizer(callback) -> None:
    """``pn.config.authorize_callback`` for the whole process. Panel keeps a config value set
    while a document is current for that document only, which would leave the server's gate
    open (found by a served test under load); this one is never a session's."""
    param.Parameterized.__setattr__(pn.config, "authorize_callback", callback)


def install(room: Room):
    """Gate the instructor page of this process's server behind ``room``'s token and keep the
    token out of every log; returns the log-record factory that was in place before."""
    set_authorizer(instructor_authorizer(room))
    previous = logging.getLogRecordFactory()
    logging.setLogRecordFactory(redacting(previous))
    return previous


_room = server_room()
if _room is not None:
    install(_room)
