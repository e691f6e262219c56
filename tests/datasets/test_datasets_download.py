"""Downloads: atomic writes, interrupted transfers, checksum rejection, mirrors, progress.

Nothing here touches the internet: fake openers and a local http.server on 127.0.0.1 only.
"""

import functools
import http.server
import io
import threading
from pathlib import Path

import numpy as np
import pytest
from _synth_datasets import arrays, gz, make_spec, write_files
from batscope import datasets
from batscope.datasets import registry
from batscope.datasets.download import DownloadError, download
from batscope.datasets.idx import idx_bytes


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BATSCOPE_DATA", str(cache))
    return cache


def leftovers(folder: Path):
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


class FakeResponse:
    def __init__(self, data: bytes, fail_after: int | None = None, length: int | None = None):
        self.buf = io.BytesIO(data)
        self.fail_after = fail_after
        self.sent = 0
        n = len(data) if length is None else length
        self.headers = {"Content-Length": str(n)}

    def read(self, n=-1):
        if self.fail_after is not None and self.sent >= self.fail_after:
            raise ConnectionResetError("connection reset by peer (simulated)")
        block = self.buf.read(min(n, 1000) if n > 0 else 1000)
        self.sent += len(block)
        return block

    def close(self):
        pass


def fake_opener(files: dict[str, bytes], fail_after=None, log=None):
    def opener(url):
        if log is not None:
            log.append(url)
        name = url.rsplit("/", 1)[-1]
        if name not in files:
            raise OSError(f"404 {url}")
        return FakeResponse(files[name], fail_after)

    return opener


def served_files(spec):
    out = {}
    for split in ("train", "test"):
        imgs, labs = arrays(split)
        for kind, arr in (("images", imgs), ("labels", labs)):
            out[spec.file(split, kind).gz_name] = gz(idx_bytes(arr))
    return out


def test_download_via_fake_opener(monkeypatch, isolated_cache, capsys):
    spec = make_spec()
    monkeypatch.setitem(registry.DATASETS, spec.name, spec)
    log = []
    x, y = datasets.load("synth", "train", opener=fake_opener(served_files(spec), log=log))
    np.testing.assert_array_equal(x, arrays("train")[0])
    assert leftovers(isolated_cache / "synth") == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    assert "downloading train-images-idx3-ubyte.gz" in capsys.readouterr().err
    # second call: served from the cache, no network
    n = len(log)
    datasets.load("synth", "train", opener=fake_opener({}, log=log), progress=False)
    assert len(log) == n


def test_interrupted_download_leaves_nothing(monkeypatch, isolated_cache):
    spec = make_spec()
    monkeypatch.setitem(registry.DATASETS, spec.name, spec)
    opener = fake_opener(served_files(spec), fail_after=50)
    with pytest.raises(FileNotFoundError, match="Download failed.*interrupted"):
        datasets.load("synth", "train", opener=opener, progress=False)
    assert leftovers(isolated_cache) in ([], ["synth"])


def test_short_download_and_bad_checksum_leave_nothing(tmp_path):
    dest = tmp_path / "f.gz"

    def short(url):
        return FakeResponse(b"x" * 100, length=200)

    with pytest.raises(DownloadError, match="short download"):
        download("http://x/f.gz", dest, opener=short, progress=False)

    def reject(p):
        raise ValueError("checksum mismatch (test)")

    with pytest.raises(ValueError, match="checksum"):
        download(
            "http://x/f.gz",
            dest,
            check=reject,
            opener=lambda u: FakeResponse(b"abc"),
            progress=False,
        )
    assert leftovers(tmp_path) == []


def test_wrong_content_from_server_is_rejected(monkeypatch, isolated_cache):
    spec = make_spec()
    monkeypatch.setitem(registry.DATASETS, spec.name, spec)
    files = served_files(spec)
    files["train-images-idx3-ubyte.gz"] = gz(idx_bytes(np.zeros((12, 4, 5), np.uint8)))
    with pytest.raises(FileNotFoundError, match="checksum mismatch"):
        datasets.load("synth", "train", opener=fake_opener(files), progress=False)
    assert not (isolated_cache / "synth" / "train-images-idx3-ubyte.gz").exists()


def test_mirror_fallback(monkeypatch):
    spec = make_spec()
    spec = spec.__class__(**{**spec.__dict__, "mirrors": ("http://a/", "http://b/")})
    monkeypatch.setitem(registry.DATASETS, spec.name, spec)
    files = served_files(spec)
    log = []

    def opener(url):
        log.append(url)
        if url.startswith("http://a/"):
            raise OSError("mirror a is down")
        return FakeResponse(files[url.rsplit("/", 1)[-1]])

    x, _ = datasets.load("synth", "test", opener=opener, progress=False)
    assert x.shape == (6, 4, 5)
    assert log[0].startswith("http://a/") and log[1].startswith("http://b/")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if "broken" in self.path:  # promise 10 000 bytes, send 100, hang up
            self.send_response(200)
            self.send_header("Content-Length", "10000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"\x00" * 98)
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_local_http_server_download(monkeypatch, http_root, isolated_cache):
    root, url = http_root
    spec = make_spec()
    monkeypatch.setitem(registry.DATASETS, spec.name, spec)
    write_files(spec, root / "mnistlike")
    x, y = datasets.load("synth", "test", base_url=url + "/mnistlike/", progress=False)
    np.testing.assert_array_equal(x, arrays("test")[0])
    assert (isolated_cache / "synth" / "t10k-images-idx3-ubyte.gz").is_file()


def test_local_http_server_interrupted(http_root, tmp_path):
    _, url = http_root
    dest = tmp_path / "out" / "file.gz"
    with pytest.raises(DownloadError):
        download(url + "/broken.gz", dest, progress=False)
    assert leftovers(tmp_path / "out") == []


def test_offline_default_opener_unreachable(monkeypatch, isolated_cache):
    spec = make_spec()  # mirrors point at 127.0.0.1:9 (discard port): nothing listens
    monkeypatch.setitem(registry.DATASETS, spec.name, spec)
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        datasets.load("synth", "test", progress=False)
    assert leftovers(isolated_cache) in ([], ["synth"])
