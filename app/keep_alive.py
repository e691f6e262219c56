"""Bokeh's keep-alive ping leaves a closing page's connection to its websocket handler.

``batscope serve`` passes ``--plugins batscope.app.keep_alive`` to ``panel serve``, which imports
this module in the server process before it starts (a Panel plugin must declare ``ROUTES``: this
one adds none). Importing it installs :func:`send_ping` as Bokeh's ``ServerConnection.send_ping``.

Why: every 37 s Bokeh pings each connection, and a ping to a websocket that is closing makes
Bokeh drop the connection from its session at once (``BokehTornado._keep_alive`` calls
``client_lost``). But Tornado still hands the handler the messages that arrived before the close
and then calls its ``on_close``: each of those messages, and the ``on_close`` itself, then asks
the connection for its session, which is gone, and Bokeh logs an ``AssertionError``
(``ServerConnection.session``). A page closed while the server is busy (a room opening, a tab
being built) leaves such messages behind; the room benchmark saw 4 to 16 of these errors per run
(benchmarks/README.md). Nothing of the app's is involved: a bare Panel button served with a short
keep-alive shows it (tests/app/test_closing_pages.py).

The fix is Bokeh's order, kept: a connection whose websocket is closing is not pinged (a ping
could not reach it anyway), so that its handler's ``on_close`` drops it, after its last
messages. A connection whose handler has already closed (``ws_connection`` is None: the page
left before its connection was made) is pinged as before, and Bokeh drops it.
"""

from __future__ import annotations

from bokeh.server.connection import ServerConnection

ROUTES: list = []

_bokeh_send_ping = ServerConnection.send_ping


def send_ping(connection: ServerConnection) -> None:
    """Bokeh's ping, except to a websocket that is closing (its handler drops it)."""
    ws = getattr(connection._socket, "ws_connection", None)
    if ws is not None and ws.is_closing():
        return
    _bokeh_send_ping(connection)


ServerConnection.send_ping = send_ping
