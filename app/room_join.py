"""A participant's session in the room: it joins when its page opens, leaves when the session is
destroyed, and the instructor's changes reach it through its own document.

Every participant page is a Bokeh document of its own, locked and sent by its own session. The
instructor's callback therefore never touches a participant's models: :func:`on_document` puts
the change on the participant's document as a next-tick callback, run under that document's lock
with that document as Panel's current one (so its widgets and URL are the ones updated).
"""

from __future__ import annotations

from functools import partial

import panel as pn
from panel.io.state import set_curdoc

from .room import Member, Room


def on_document(doc, fn) -> None:
    """Run ``fn`` on ``doc``'s own session, at its next tick."""

    def run():
        with set_curdoc(doc):
            fn()

    doc.add_next_tick_callback(run)


def join_room(room: Room, app) -> Member:
    """Add the current session's ``app`` to ``room`` until the session is destroyed; the page
    shows the participant their generated name (how the instructor's table calls them)."""
    doc = pn.state.curdoc
    member = room.join(app, partial(on_document, doc))
    pn.state.on_session_destroyed(lambda session_context: room.leave(member))
    app.template.header.append(
        pn.pane.Markdown(
            f"In the room as **{member.name}**", css_classes=["room-name"], margin=(0, 10)
        )
    )
    return member
