"""Pages that close while the server is busy leave no exception in the server's log.

Bokeh's keep-alive ping used to drop a closing page's connection before its websocket handler
had handled the page's last messages and its close: each then raised an ``AssertionError``
(app/keep_alive.py). Served here as ``batscope serve`` serves (its ``--plugins``), with a short
keep-alive so that a ping falls between a page's close and its last messages: a page clicks a
button whose callback holds the server for 0.3 s, says it is drawn, and drops its connection.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import socket
import subprocess
import sys
import time

from batscope.app.cli import serve_command

APP = """
import time
import panel as pn

button = pn.widgets.Button(name="busy")
button.on_click(lambda event: time.sleep(0.3))
pn.Column(button).servable()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _plugins() -> list[str]:
    """The ``--plugins`` flags of ``batscope serve``'s ``panel serve`` command line."""
    cmd = serve_command(port=5006)
    return [flag for i, arg in enumerate(cmd) if arg == "--plugins" for flag in cmd[i : i + 2]]


@contextlib.contextmanager
def serve_busy(tmp_path, log: list[str]):
    """A bare Panel page with a slow button, served with ``batscope serve``'s plugins and a
    keep-alive ping every 50 ms; yields its URL; the server's output goes to ``log``."""
    script = tmp_path / "busy.py"
    script.write_text(APP)
    port = _free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(script), "--port", str(port)]
    cmd += [*_plugins(), "--keep-alive", "50"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        end = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < end, "the server did not start"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/busy"
    finally:
        proc.terminate()
        log.append(proc.communicate(timeout=30)[0])


async def _open(url: str):
    """GET the page and open its websocket, as the page's BokehJS does; returns the
    connection and the id of the page's button."""
    from bokeh.client.websocket import WebSocketClientConnectionWrapper
    from bokeh.protocol import Protocol
    from bokeh.protocol.receiver import Receiver
    from tornado.httpclient import AsyncHTTPClient
    from tornado.websocket import websocket_connect

    http = AsyncHTTPClient(force_instance=True)
    try:
        page = await http.fetch(url, request_timeout=30)
    finally:
        http.close()
    token = re.search(r'"token":"([^"]+)"', page.body.decode()).group(1)
    ws = await websocket_connect(url.replace("http", "ws") + "/ws", subprotocols=["bokeh", token])
    conn = WebSocketClientConnectionWrapper(ws)
    receiver = Receiver(Protocol())

    async def message():
        while True:
            msg = await receiver.consume(await ws.read_message())
            if msg is not None:
                return msg

    assert (await message()).msgtype == "ACK"
    await Protocol().create("PULL-DOC-REQ").send(conn)
    reply = await message()
    while reply.msgtype != "PULL-DOC-REPLY":
        reply = await message()
    refs = reply.content["doc"]["roots"]
    return conn, _button_id(refs)


def _button_id(obj) -> str | None:
    if isinstance(obj, dict):
        if obj.get("type") == "object" and obj.get("name", "").endswith("Button"):
            return obj["id"]
        values = obj.values()
    elif isinstance(obj, list):
        values = obj
    else:
        return None
    for value in values:
        found = _button_id(value)
        if found:
            return found
    return None


def _event(name: str, model: str | None = None) -> dict:
    values = {"type": "map"}
    if model is not None:
        values["entries"] = [["model", {"id": model}]]
    data = {"type": "event", "name": name, "values": values}
    return {"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": data}


async def _click_and_leave(url: str) -> None:
    from bokeh.protocol.messages.patch_doc import patch_doc

    conn, button = await _open(url)
    assert button is not None
    for event in (_event("button_click", button), _event("document_ready")):
        msg = patch_doc(patch_doc.create_header(), {}, {"events": [event]})
        await msg.send(conn)
    conn._socket.stream.close()  # the tab is gone: no closing handshake


def test_pages_closed_while_the_server_is_busy_leave_no_exception(tmp_path):
    log: list[str] = []
    with serve_busy(tmp_path, log) as url:

        async def room():
            await asyncio.gather(*(_click_and_leave(url) for _ in range(6)))
            await asyncio.sleep(3.0)  # the server handles what the pages left, and their closes

        # a thread of its own: an event loop may already run in this one (browser tests)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: asyncio.run(room())).result()
    (out,) = log
    assert "ServerConnection created" in out or "WebSocket connection opened" in out
    assert not re.search(r"Traceback|AssertionError|\bERROR\b", out), out[-3000:]
