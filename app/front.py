"""``batscope serve --workers N``: one address for the room, N serving processes behind it.

A serving process builds every page and answers every click of its participants on one event
loop, one at a time: a room that opens the link together waits for the openings in turn (about
0.25 s of the loop each on a 2-core VM). The front listens where the room connects and spreads
the participants over ``N`` serving processes (``app/workers.py``), so that their openings and
clicks run side by side:

- a page request (``GET /main?...``) goes to the serving process with the fewest participants
  (open websockets, and pages served whose websocket has not connected yet); the front reads the
  Bokeh session id from the page's token (it parses nothing else of the page);
- the page's websocket (``/main/ws``, its token in the ``Sec-WebSocket-Protocol`` header) goes to
  the process that built that session: a Bokeh session lives in one process;
- anything else (scripts, stylesheets) goes to any of them: they serve the same files.

A process builds one page at a time for the front (the pages named in ``pages``): the next page
request waits in the front until the previous page has been built. Without that, a room that
opens the link together puts every page build in the process's queue before the first page's
websocket, and every participant waits for all the pages; with it, pages become ready one after
another, and the clicks of those already in are answered between two builds.

Bytes and websocket frames are passed on as they come, each way with backpressure (a slow page
slows its own process's writes, as it would without the front). The front checks the
websocket's origin against the same allowed origins as the serving processes, which check it
again; it accepts only GET and HEAD requests of at most ``MAX_REQUEST_BODY`` bytes and a
websocket message of at most Bokeh's default size. Everything it remembers is bounded: a served
page that never connects is forgotten after ``PENDING_S``, and at most ``MAX_PENDING`` are kept.
"""

from __future__ import annotations

import asyncio
import collections
import re
import time
from collections.abc import Callable

from bokeh.server.util import check_allowlist
from bokeh.util.token import get_session_id
from tornado import httpclient, web, websocket
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

PENDING_S = 60.0  # ``--unused-session-lifetime``: Bokeh discards an unconnected session then
MAX_PENDING = 10_000
MAX_REQUEST_BODY = 64 * 1024  # the app takes no uploads over HTTP (they come over the websocket)
MAX_MESSAGE = 20 * 1024 * 1024  # Bokeh's default ``--websocket-max-message-size``
PAGE_TIMEOUT_S = 300.0  # a page waits its turn in a busy process; the browser gives up first
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
    )
)
_TOKEN_IN_PAGE = re.compile(rb'"token":\s*"([A-Za-z0-9_\-.]+)"')


def session_in_page(body: bytes) -> str | None:
    """The Bokeh session id of a served page (from the token its scripts connect with)."""
    m = _TOKEN_IN_PAGE.search(body)
    return None if m is None else session_of_token(m.group(1).decode("ascii"))


def session_of_token(token: str) -> str | None:
    """The session id a Bokeh token names, or None for anything that is not a token."""
    try:
        session_id = get_session_id(token)
    except Exception:  # noqa: BLE001  (a browser's header is untrusted: any failure is "none")
        return None
    return session_id if isinstance(session_id, str) and session_id else None


class Router:
    """Which serving process each participant's page belongs to (no I/O: unit-testable).

    A new page goes to the process with the fewest participants; among equals, to the one
    chosen longest ago, so that pages opened one after another alternate.
    """

    def __init__(
        self,
        workers: int,
        pending_s: float = PENDING_S,
        max_pending: int = MAX_PENDING,
        clock: Callable[[], float] = time.monotonic,
    ):
        if workers < 1:
            raise ValueError(f"a front needs at least 1 serving process, got {workers}")
        self.workers = workers
        self._pending_s, self._max_pending, self._clock = pending_s, max_pending, clock
        self._open = [0] * workers  # websockets now connected, per process
        # session id -> (process, time served): pages whose websocket has not connected yet
        self._pending: collections.OrderedDict[str, tuple[int, float]] = collections.OrderedDict()
        self._turn = 0  # the process a tie goes to next

    def load(self, worker: int) -> int:
        """Participants of ``worker``: connected, or served and expected."""
        self._expire()
        pending = sum(1 for k, _ in self._pending.values() if k == worker)
        return self._open[worker] + pending

    def choose(self) -> int:
        """The process for a new page: the fewest participants, ties in turn."""
        order = [(self._turn + i) % self.workers for i in range(self.workers)]
        best = min(order, key=self.load)
        self._turn = (best + 1) % self.workers
        return best

    def page_served(self, session_id: str, worker: int) -> None:
        """``worker`` built the page of ``session_id``; its websocket is expected there."""
        self._pending[session_id] = (worker, self._clock())
        self._pending.move_to_end(session_id)
        while len(self._pending) > self._max_pending:
            self._pending.popitem(last=False)

    def connect(self, session_id: str | None) -> int:
        """The process for the websocket of ``session_id`` (the one that built its page; for a
        session the front never served, e.g. after a restart, a new choice: Bokeh makes the
        session there), counted as connected until :meth:`disconnect`."""
        served = self._pending.pop(session_id, None) if session_id else None
        worker = served[0] if served is not None else self.choose()
        self._open[worker] += 1
        return worker

    def disconnect(self, worker: int) -> None:
        """A websocket of ``worker`` has closed."""
        self._open[worker] = max(0, self._open[worker] - 1)

    def forget(self, worker: int) -> None:
        """``worker`` was restarted: its sessions are gone."""
        for session_id in [s for s, (k, _) in self._pending.items() if k == worker]:
            del self._pending[session_id]

    def _expire(self) -> None:
        end = self._clock() - self._pending_s
        while self._pending:
            session_id, (_, served) = next(iter(self._pending.items()))
            if served > end:
                return
            del self._pending[session_id]


class Front:
    """The front's state: the router, the serving processes' ports, the allowed origins, the
    app's page paths (``/main``) and, per process, the page being built."""

    def __init__(
        self,
        router: Router,
        port_of: Callable[[int], int],
        origins: list[str],
        pages: tuple[str, ...] = ("/main",),
    ):
        self.router = router
        self.port_of = port_of  # a restarted process listens on a new port
        self.origins = set(origins)
        self.pages = frozenset(pages)
        self.building = [asyncio.Semaphore(1) for _ in range(router.workers)]
        self.client = httpclient.AsyncHTTPClient(
            force_instance=True, max_clients=256, max_body_size=256 * 1024 * 1024
        )

    def url(self, worker: int, uri: str, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port_of(worker)}{uri}"

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        host = origin.split("://", 1)[-1].rstrip("/").lower()
        return check_allowlist(host, self.origins)


def _forwarded_headers(headers) -> dict:
    return {k: v for k, v in headers.get_all() if k.lower() not in HOP_BY_HOP}


class PageProxy(web.RequestHandler):
    """Pages and files: a new page to the least busy process, a file to any."""

    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, front: Front) -> None:
        self.front = front

    async def get(self, *_) -> None:
        worker = self.front.router.choose()
        if self.request.path.rstrip("/") not in self.front.pages:
            await self._forward(worker, _forwarded_headers(self.request.headers))
            return
        # a page is read for its token: asked for uncompressed (a few kB)
        headers = _forwarded_headers(self.request.headers)
        headers = {k: v for k, v in headers.items() if k.lower() != "accept-encoding"}
        async with self.front.building[worker]:  # one page at a time per process
            if self.request.connection.stream.closed():
                return  # the page was closed or reloaded while it waited: build nothing
            await self._forward(worker, headers)

    async def _forward(self, worker: int, headers: dict) -> None:
        request = httpclient.HTTPRequest(
            self.front.url(worker, self.request.uri),
            method=self.request.method,
            headers=headers,
            follow_redirects=False,
            decompress_response=False,
            request_timeout=PAGE_TIMEOUT_S,
        )
        try:
            response = await self.front.client.fetch(request, raise_error=False)
        except OSError:
            response = None
        if response is None or response.code == 599:
            self.set_status(502)
            self.finish("batscope: a serving process did not answer; try again in a moment")
            return
        self.set_status(response.code, response.reason)
        for name, value in response.headers.get_all():
            if name.lower() not in HOP_BY_HOP:
                self.add_header(name, value)
        body = response.body or b""
        if "text/html" in response.headers.get("Content-Type", ""):
            session_id = session_in_page(body)
            if session_id is not None:
                self.front.router.page_served(session_id, worker)
        if response.code == 304 or self.request.method == "HEAD":
            self.finish()
        else:
            self.finish(body)

    head = get


class SocketProxy(websocket.WebSocketHandler):
    """A page's websocket, joined to the same path on the process that built its session."""

    def initialize(self, front: Front) -> None:
        self.front = front
        self.upstream = None
        self.worker: int | None = None

    def check_origin(self, origin: str) -> bool:
        return self.front.origin_allowed(origin)

    def select_subprotocol(self, subprotocols: list[str]) -> str | None:
        # Bokeh's: ``bokeh`` and the session's token
        return subprotocols[0] if len(subprotocols) == 2 else None

    async def open(self, *_) -> None:
        offered = [
            p.strip() for p in self.request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        ]
        session_id = session_of_token(offered[1]) if len(offered) == 2 else None
        self.worker = self.front.router.connect(session_id)
        headers = {
            k: v
            for k in ("Origin", "Cookie", "User-Agent")
            if (v := self.request.headers.get(k)) is not None
        }
        request = httpclient.HTTPRequest(
            self.front.url(self.worker, self.request.uri, "ws"),
            headers=headers,
            connect_timeout=20.0,
            request_timeout=PAGE_TIMEOUT_S,
        )
        try:
            self.upstream = await websocket.websocket_connect(
                request, subprotocols=offered, max_message_size=MAX_MESSAGE
            )
        except (OSError, httpclient.HTTPClientError, websocket.WebSocketError):
            self.close(1011, "a serving process did not answer")
            return
        if self.ws_connection is None:  # the page left while we connected
            self.upstream.close()
            return
        IOLoop.current().spawn_callback(self._to_page)

    async def _to_page(self) -> None:
        """Pass the process's messages to the page until either side closes."""
        upstream = self.upstream
        while True:
            message = await upstream.read_message()
            if message is None:
                break
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except websocket.WebSocketClosedError:
                break
        upstream.close()
        self.close()

    async def on_message(self, message) -> None:
        if self.upstream is None:
            return
        try:
            await self.upstream.write_message(message, binary=isinstance(message, bytes))
        except websocket.WebSocketClosedError:
            self.close()

    def on_close(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        if self.worker is not None:
            self.front.router.disconnect(self.worker)
            self.worker = None


def front_app(front: Front) -> web.Application:
    """The front's routes: websockets (``…/ws``) to their session's process, the rest by page."""
    return web.Application(
        [
            (r"(.*)/ws", SocketProxy, {"front": front}),
            (r"(/.*)", PageProxy, {"front": front}),
        ],
        websocket_max_message_size=MAX_MESSAGE,
        # a page that vanished (a laptop closed) is noticed and its session ended
        websocket_ping_interval=30,
        websocket_ping_timeout=30,
    )


def listen(front: Front, port: int, address: str) -> HTTPServer:
    """Serve the front on ``address:port`` (on the current IOLoop)."""
    server = HTTPServer(front_app(front), max_body_size=MAX_REQUEST_BODY, xheaders=False)
    server.listen(port, address)
    return server
