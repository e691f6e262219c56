"""The server's scripts and stylesheets, sent gzip-compressed.

Every page of the app makes the browser load about 5.4 MB of scripts and stylesheets (BokehJS,
Panel, Bootstrap, FilePond) from ``/static/``, which Tornado's ``StaticFileHandler`` (under
Bokeh's and Panel's static routes) sends uncompressed: a room of 30 that opens the link together
asks the room's Wi-Fi for 160 MB. Compressed with gzip (level 6) a page's files are 1.6 MB.

``batscope serve`` passes ``--plugins batscope.app.static_gzip`` to ``panel serve``, which imports
this module in the serving process before it starts (a Panel plugin declares ``ROUTES``: this one
adds none); :func:`install` then replaces ``StaticFileHandler.get`` in that process:

- a request that accepts gzip for a text file (scripts, stylesheets, JSON, SVG) of at least
  1 kB gets the file's gzip, made once per file (on a thread, off the event loop; one compression
  however many ask at once) and kept, bounded by bytes (the least recently used leave first),
  and renewed when the file changes on disk;
- its ETag is the file's with ``-gzip`` added (two encodings are two representations), so a
  browser's ``If-None-Match`` gets a 304 for the copy it holds; Bokeh's versioned URLs keep their
  long cache lifetime;
- anything else (no gzip accepted, a byte range, an image, a file Tornado refuses) is Tornado's
  own answer, with ``Vary: Accept-Encoding`` so that a cache between keeps the two apart.

Tornado resolves and checks the path first (``validate_absolute_path``): nothing outside the
static roots is read, and a name that is not a file is refused as before.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gzip
import os
import threading

from tornado.web import StaticFileHandler

ROUTES: list = []  # a Panel plugin: this module adds no route

MAX_BYTES = 32 * 1024 * 1024  # a page's files are 1.6 MB compressed
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
MIN_SIZE = 1024  # smaller files gain nothing from gzip
TORNADO_GET = StaticFileHandler.get  # Tornado's own, which install() replaces


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip().replace(" ", "")
            return not (q.startswith("q=") and _quality(q[2:]) == 0.0)
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0  # an unreadable weight is no refusal


def compressible(content_type: str | None) -> bool:
    return bool(content_type) and content_type.startswith(COMPRESSIBLE)


class PackedFiles:
    """Each file's gzip by absolute path, made once while the file is unchanged on disk; the
    least recently used leave first beyond ``max_bytes``. Compressions run on a small pool of
    threads (zlib lets go of the GIL) and may be awaited from any event loop: tests serve several
    in one process."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self.compressions = 0  # how many files were compressed (for tests and benchmarks)
        self._packed: collections.OrderedDict[str, tuple[tuple, bytes]] = collections.OrderedDict()
        self._bytes = 0
        self._making: dict[tuple, concurrent.futures.Future] = {}
        self._lock = threading.Lock()

    @property
    def bytes(self) -> int:
        return self._bytes

    async def get(self, path: str) -> bytes | None:
        """The gzip of the file at ``path``, or None when compressing it gains nothing."""
        stat = os.stat(path)
        if not MIN_SIZE <= stat.st_size <= self.max_bytes:  # too small to gain, or never kept:
            return None  # a file that could not be kept would be compressed at every request
        version = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            kept = self._packed.get(path)
            if kept is not None and kept[0] == version:
                self._packed.move_to_end(path)
                return kept[1]
            making = self._making.get((path, version))
            if making is None:
                making = _COMPRESSING.submit(self._make, path, version)
                self._making[(path, version)] = making
        packed = await asyncio.shield(asyncio.wrap_future(making))
        return packed if len(packed) < stat.st_size else None

    def _make(self, path: str, version: tuple) -> bytes:
        try:
            with open(path, "rb") as f:
                packed = gzip.compress(f.read(), compresslevel=6, mtime=0)
        finally:
            with self._lock:
                self._making.pop((path, version), None)
        with self._lock:
            self.compressions += 1
            old = self._packed.pop(path, None)
            if old is not None:
                self._bytes -= len(old[1])
            if len(packed) <= self.max_bytes:
                self._packed[path] = (version, packed)
                self._bytes += len(packed)
            while self._bytes > self.max_bytes:
                _, (_, gone) = self._packed.popitem(last=False)
                self._bytes -= len(gone)
        return packed


_COMPRESSING = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="batscope-gzip")
PACKED = PackedFiles()


async def get(self: StaticFileHandler, path: str, include_body: bool = True) -> None:
    """``StaticFileHandler.get`` that sends a text file's gzip to a browser that accepts it."""
    headers = self.request.headers
    self.set_header("Vary", "Accept-Encoding")
    if "Range" in headers or not accepts_gzip(headers.get("Accept-Encoding", "")):
        await TORNADO_GET(self, path, include_body)
        return
    self.path = self.parse_url_path(path)
    absolute = self.validate_absolute_path(self.root, self.get_absolute_path(self.root, self.path))
    if absolute is None:  # Tornado answered already (a redirect)
        return
    self.absolute_path = absolute
    packed = await PACKED.get(absolute) if compressible(self.get_content_type()) else None
    if packed is None:
        await TORNADO_GET(self, path, include_body)
        return
    self.modified = self.get_modified_time()
    self.set_headers()
    self.clear_header("Accept-Ranges")  # ranges are served from the file as it is, not this
    etag = self._headers.get("Etag")
    if etag:
        self.set_header("Etag", etag[:-1] + '-gzip"')
    self.set_header("Content-Encoding", "gzip")
    if self.should_return_304():
        self.set_status(304)
        return
    self.set_header("Content-Length", len(packed))
    if include_body:
        self.write(packed)


def install() -> None:
    """Send static files gzip-compressed in this process (idempotent)."""
    StaticFileHandler.get = get


install()
