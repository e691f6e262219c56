"""The front's copy of the page's scripts and stylesheets, sent compressed.

Every page of the app makes the browser load about 5.4 MB of scripts and stylesheets (BokehJS,
Panel, Bootstrap, FilePond) from ``/static/``. The Bokeh server sends them uncompressed, and
with ``--workers`` each of them also crosses the front. A room of 30 that opens the link
together asks for 160 MB over the room's Wi-Fi. The files are the same in every serving process
and never change while the server runs, so the front keeps each one it has passed on, once, with
its gzip (level 6: 5.4 → 1.6 MB for a page) made once, and answers the next browsers itself:

- a browser that accepts gzip gets the compressed copy (``Vary: Accept-Encoding``), any other
  the file as the serving process sent it;
- ``If-None-Match`` with the file's ETag gets a 304;
- a versioned URL (``?v=<hash>``, as the pages ask) may be kept by the browser for a year
  (``immutable``); any other is checked again with its ETag (``no-cache``).

What is kept is bounded: files are keyed by their decoded, normalised path alone (neither a
query nor another spelling of the path makes a new copy, so made-up URLs cannot fill it or make
the front compress a file again), only answers ``200`` are kept, and the least recently used
leave once ``max_bytes`` is exceeded (a file larger than that is passed on, not kept).
"""

from __future__ import annotations

import collections
import dataclasses
import gzip

MAX_BYTES = 64 * 1024 * 1024  # every file a page asks for, raw and compressed, is 7 MB
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
MIN_COMPRESSED = 1024  # smaller files gain nothing from gzip
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


@dataclasses.dataclass(frozen=True)
class StaticFile:
    """One file as a serving process sent it, and its gzip when that is smaller."""

    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str | None
    last_modified: str | None

    @property
    def size(self) -> int:
        return len(self.body) + len(self.gzipped or b"")

    def headers(self, accepts_gzip: bool, versioned: bool) -> dict[str, str]:
        """The response's headers (without the length: the server adds it)."""
        out = {"Content-Type": self.content_type, "Vary": "Accept-Encoding"}
        out["Cache-Control"] = IMMUTABLE if versioned else REVALIDATE
        if self.etag:
            out["Etag"] = self.etag
        if self.last_modified:
            out["Last-Modified"] = self.last_modified
        if accepts_gzip and self.gzipped is not None:
            out["Content-Encoding"] = "gzip"
        return out

    def payload(self, accepts_gzip: bool) -> bytes:
        return self.gzipped if accepts_gzip and self.gzipped is not None else self.body


def static_file(body: bytes, headers: dict[str, str]) -> StaticFile | None:
    """A file to keep from a ``200`` answer's body and headers (names in any case), or None for
    one already encoded by the process (kept as sent would need its encoding too)."""
    lower = {k.lower(): v for k, v in headers.items()}
    if lower.get("content-encoding", "identity") != "identity":
        return None
    content_type = lower.get("content-type", "application/octet-stream")
    gzipped = None
    if len(body) >= MIN_COMPRESSED and content_type.startswith(COMPRESSIBLE):
        packed = gzip.compress(body, compresslevel=6, mtime=0)
        gzipped = packed if len(packed) < len(body) else None
    return StaticFile(body, gzipped, content_type, lower.get("etag"), lower.get("last-modified"))


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header allows gzip (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        if name.strip() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and _quality(q[2:]) == 0.0)
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def etag_matches(if_none_match: str, etag: str | None) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong) or is ``*``."""
    if not etag or not if_none_match:
        return False
    wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in wanted or etag.removeprefix("W/") in wanted


class StaticCache:
    """Files by path, the least recently used leaving first beyond ``max_bytes``."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self._files: collections.OrderedDict[str, StaticFile] = collections.OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._files)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, path: str) -> StaticFile | None:
        found = self._files.get(path)
        if found is not None:
            self._files.move_to_end(path)
        return found

    def put(self, path: str, file: StaticFile) -> None:
        """Keep ``file`` for ``path`` unless it alone exceeds the bound."""
        if file.size > self.max_bytes:
            return
        old = self._files.pop(path, None)
        if old is not None:
            self._bytes -= old.size
        self._files[path] = file
        self._bytes += file.size
        while self._bytes > self.max_bytes:
            _, gone = self._files.popitem(last=False)
            self._bytes -= gone.size
