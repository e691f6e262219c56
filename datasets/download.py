"""Atomic downloads with a plain-text progress bar and an injectable opener.

A download streams into a hidden ``.part`` file in the destination folder, is checked by the
caller's ``check`` callback, and only then is moved into place with ``os.replace``. If anything
fails (network error, short read, checksum mismatch, Ctrl-C) the partial file is deleted, so no
file that looks complete is ever left behind.

An *opener* is any callable ``opener(url) -> response`` where ``response`` has ``read(n)`` and
may have ``headers`` (for ``Content-Length``) and ``close()``. The default is
``urllib.request.urlopen``; tests pass fakes or point at a local ``http.server``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

USER_AGENT = "batscope-datasets/0.1 (+https://github.com/)"
CHUNK = 1 << 16

Opener = Callable[[str], Any]


class DownloadError(OSError):
    """A download failed; nothing was written at the destination."""


def default_opener(url: str, timeout: float = 60.0):
    """``urllib`` GET with a user agent and a timeout."""
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 (https URLs from registry)


class Progress:
    """A single-line text progress bar on a stream (stderr by default)."""

    def __init__(self, label: str, total: int | None, stream: IO[str] | None = None, width=30):
        self.label, self.total, self.width = label, total, width
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self._last = 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= 0.2:
            self._last = now
            self._draw()

    def _draw(self, end: str = "") -> None:
        mb = self.done / 1e6
        if self.total:
            frac = min(1.0, self.done / self.total)
            bar = "#" * int(frac * self.width)
            text = (
                f"\r{self.label} [{bar:<{self.width}}] {100 * frac:5.1f}%"
                f" {mb:.1f}/{self.total / 1e6:.1f} MB"
            )
        else:
            text = f"\r{self.label} {mb:.1f} MB"
        self.stream.write(text + end)
        self.stream.flush()

    def close(self) -> None:
        self._draw(end="\n")


def _content_length(resp) -> int | None:
    headers = getattr(resp, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def download(
    url: str,
    dest: str | os.PathLike,
    check: Callable[[Path], None] | None = None,
    opener: Opener | None = None,
    progress: bool | IO[str] = True,
) -> Path:
    """Fetch ``url`` to ``dest`` atomically; ``check(tmp_path)`` may raise to reject the bytes.

    Raises :class:`DownloadError` (network or length problems) or whatever ``check`` raises;
    in every failure case ``dest`` is untouched and no partial file remains.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    opener = opener or default_opener
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    bar = None
    try:
        try:
            resp = opener(url)
        except Exception as exc:  # noqa: BLE001 - any opener failure is a download failure
            raise DownloadError(f"cannot open {url}: {exc}") from exc
        try:
            total = _content_length(resp)
            if progress:
                stream = None if progress is True else progress
                bar = Progress(f"downloading {dest.name}", total, stream)
            got = 0
            with os.fdopen(fd, "wb") as out:
                fd = -1
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except Exception as exc:  # noqa: BLE001
                        raise DownloadError(f"{url}: interrupted after {got} bytes: {exc}") from exc
                    if not block:
                        break
                    out.write(block)
                    got += len(block)
                    if bar:
                        bar.update(len(block))
                out.flush()
                os.fsync(out.fileno())
        finally:
            close = getattr(resp, "close", None)
            if close is not None:
                close()
            if bar:
                bar.close()
        if total is not None and got != total:
            raise DownloadError(f"{url}: short download, {got} of {total} bytes")
        if check is not None:
            check(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a cache file is ordinary data
        os.replace(tmp, dest)
        return dest
    finally:
        if fd != -1:
            os.close(fd)
        if tmp.exists():
            tmp.unlink()
