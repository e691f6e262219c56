"""app/static_gzip.py: the served scripts and stylesheets go gzip-compressed to browsers that
accept it, compressed once per file, with Tornado's checks and answers kept for the rest."""

from __future__ import annotations

import asyncio
import gzip
import os
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from batscope.app import static_gzip
from batscope.app.static_gzip import PackedFiles, accepts_gzip

pn = pytest.importorskip("panel")
SCRIPT = "/static/js/bokeh.min.js"


def _get(url: str, method: str = "GET", **headers):
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


@pytest.fixture(scope="module")
def served():
    """A Panel page served in this process, as ``batscope serve`` serves (the plugin imported)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = pn.serve(lambda: pn.pane.Markdown("x"), port=port, threaded=True, show=False)
    end = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert time.monotonic() < end
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def packed(monkeypatch):
    fresh = PackedFiles()
    monkeypatch.setattr(static_gzip, "PACKED", fresh)
    return fresh


def test_a_browser_that_accepts_gzip_gets_the_file_compressed_once(served, packed):
    code, plain_headers, plain = _get(served + SCRIPT)
    assert code == 200 and plain_headers.get("Content-Encoding") is None
    assert "Accept-Encoding" in plain_headers["Vary"]
    with ThreadPoolExecutor(8) as pool:  # a room asks at once: one compression
        answers = list(
            pool.map(lambda _: _get(served + SCRIPT, **{"Accept-Encoding": "gzip, br"}), range(8))
        )
    assert packed.compressions == 1
    for code, headers, body in answers:
        assert code == 200 and headers["Content-Encoding"] == "gzip"
        assert int(headers["Content-Length"]) == len(body) < len(plain) / 2
        assert gzip.decompress(body) == plain
        assert headers["Etag"] == plain_headers["Etag"][:-1] + '-gzip"'
        assert headers.get("Accept-Ranges") is None
    code, headers, body = _get(served + SCRIPT, **{"Accept-Encoding": "gzip"})
    assert packed.compressions == 1  # kept


def test_etags_head_and_ranges_keep_their_meaning(served, packed):
    _, plain_headers, plain = _get(served + SCRIPT)
    _, gz_headers, gz = _get(served + SCRIPT, **{"Accept-Encoding": "gzip"})
    code, _, body = _get(
        served + SCRIPT, **{"Accept-Encoding": "gzip", "If-None-Match": gz_headers["Etag"]}
    )
    assert code == 304 and body == b""
    code, _, body = _get(served + SCRIPT, **{"If-None-Match": plain_headers["Etag"]})
    assert code == 304  # Tornado's own answer for the file as it is
    code, headers, body = _get(served + SCRIPT, "HEAD", **{"Accept-Encoding": "gzip"})
    assert code == 200 and body == b"" and int(headers["Content-Length"]) == len(gz)
    code, headers, body = _get(served + SCRIPT, Range="bytes=0-9", **{"Accept-Encoding": "gzip"})
    assert code == 206 and body == plain[:10] and headers.get("Content-Encoding") is None


def test_what_tornado_refuses_stays_refused(served, packed):
    for path in ("/static/js/no-such-file.js", "/static/../../../etc/passwd"):
        code, _, _ = _get(served + path, **{"Accept-Encoding": "gzip"})
        assert code in (403, 404)
    assert packed.compressions == 0


def test_a_file_is_compressed_again_when_it_changes_and_the_copies_are_bounded(tmp_path):
    files = PackedFiles(max_bytes=2_500)
    paths = []
    for k in range(3):
        path = tmp_path / f"f{k}.js"
        path.write_bytes(os.urandom(1000).hex().encode())  # 2 kB of text, about 1.1 kB packed
        paths.append(str(path))

    def pack(path):
        return asyncio.run(files.get(path))

    for path in paths:
        assert gzip.decompress(pack(path)) == open(path, "rb").read()
    assert files.compressions == 3 and files.bytes <= 2_500
    pack(paths[2])  # kept
    assert files.compressions == 3
    pack(paths[0])  # the least recently used had left
    assert files.compressions == 4
    with open(paths[0], "ab") as f:
        f.write(b"// changed")
    assert gzip.decompress(pack(paths[0])).endswith(b"// changed")
    assert files.compressions == 5
    small = tmp_path / "small.js"
    small.write_bytes(b"x" * 100)  # too small to gain
    assert pack(str(small)) is None


def test_servers_on_several_event_loops_share_one_compression(tmp_path):
    """Tests serve several apps in one process, each on its own loop and thread."""
    files = PackedFiles()
    path = tmp_path / "big.js"
    path.write_bytes(os.urandom(2_000_000).hex().encode())  # long enough to overlap
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: asyncio.run(files.get(str(path))), range(4)))
    assert files.compressions == 1
    assert all(r is results[0] for r in results[1:])


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("*", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("identity", False),
        ("", False),
    ],
)
def test_accept_encoding_is_read_with_its_quality(header, ok):
    assert accepts_gzip(header) is ok
