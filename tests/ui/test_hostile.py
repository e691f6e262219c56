"""A hostile participant, through the served page: long URLs and poisoned uploads are refused.

Each attack must answer quickly with a visible, escaped message, run no script (no dialog, no
global set by an ``onerror``), keep the server's memory flat and leave the setup unchanged.
"""

from __future__ import annotations

import io
import json
import math
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("playwright")

from batscope.training.state import run_config  # noqa: E402

from .conftest import open_app, open_tab, status, wait_until  # noqa: E402

XSS = '<img src=x onerror="window.__xss = 1; alert(1)">'
RSS_SLACK_MB = 150  # an attack that allocates is 1-2 GB; a refused one stays within noise


def rss_mb() -> float:
    """Resident memory of this process, which serves the app (``Served`` runs in-process)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


class PeakRss:
    """The largest resident memory seen while the block runs (sampled every 5 ms): memory
    allocated and freed again before the block ends still counts."""

    def __enter__(self):
        self.start = self.peak = rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return self.peak - self.start


def watch_scripts(page) -> list:
    """Dialogs opened by the page (an injected ``alert``) are recorded and dismissed."""
    dialogs = []

    def on_dialog(d):
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    return dialogs


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _model_json(n_inputs: int, n: int) -> str:
    layer = {"kind": "dense", "n": n, "tau_s": 1.0, "theta": 1.0, "reset": 1.0, "n_max": 10}
    layer["init"] = {"kind": "uniform", "low": -1.0, "high": 1.0}
    return json.dumps(
        {"format": "batscope-network", "version": 1, "n_inputs": n_inputs, "layers": [layer]}
    )


def huge_layer_model() -> bytes:
    """A ~500-byte model asking for one layer of n = 100,000 on 784 inputs (1.2 GB built
    naively, before its input count is compared with the task's)."""
    return _zip({"model.json": _model_json(784, 100_000), "model.npz": b"PK"})


def zip_bomb_model() -> bytes:
    """A matching config whose weights inflate to 1 GiB of zeros from under 1 MB."""
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        head, {"descr": "<f8", "fortran_order": False, "shape": (2**27, 1)}
    )
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("w0.npy", "w", force_zip64=True) as f:
            f.write(head.getvalue())
            chunk = bytes(2**22)
            for _ in range(2**30 // len(chunk)):
                f.write(chunk)
    return _zip({"model.json": _model_json(1, 2**27), "model.npz": npz.getvalue()})


def config_bytes(mutate) -> bytes:
    from batscope.training.state import NetworkSpec, TrainingConfig

    d = run_config(NetworkSpec(), TrainingConfig())
    mutate(d)
    return json.dumps(d).encode()


ATTACKS = {
    "huge-n model": ("model", "batscope-model.zip", "application/zip", huge_layer_model),
    "zip-bomb model": ("model", "batscope-model.zip", "application/zip", zip_bomb_model),
    "deep config": ("config", "c.json", "application/json", lambda: b"[" * 5000 + b"]" * 5000),
    "NaN config": (
        "config",
        "c.json",
        "application/json",
        lambda: config_bytes(lambda d: d["network"]["layers"][0].update(init_high=math.nan)),
    ),
    "XSS config": (
        "config",
        "c.json",
        "application/json",
        lambda: config_bytes(lambda d: d["training"].update({XSS: 1})),
    ),
    "XSS model": (
        "model",
        "batscope-model.zip",
        "application/zip",
        lambda: _zip(
            {
                "model.json": _model_json(4, 2).replace(
                    '"n_max"', json.dumps(XSS) + ': 1, "n_max"'
                ),
                "model.npz": b"PK",
            }  # fmt: skip
        ),
    ),
}


def upload(page, which: str, name: str, mime: str, data: bytes) -> None:
    """Put ``data`` in the config (first) or model (second) file input of the export tab."""
    index = {"config": 0, "model": 1}[which]
    page.locator("input[type=file]").nth(index).set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": data}]
    )


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_hostile_upload_is_refused_escaped_and_harmless(served, guarded, attack):
    which, name, mime, make = ATTACKS[attack]
    data = make()
    dialogs = watch_scripts(guarded)
    page = open_app(guarded, served.url)
    app = served.apps[-1]
    open_tab(page, "Code & export")
    page.locator("input[type=file]").nth(1).wait_for(state="attached", timeout=20_000)
    before = run_config(app.network, app.training)
    message = page.locator(".export-message p").first
    with PeakRss() as rss:
        upload(page, which, name, mime, data)
        wait_until(lambda: message.count() and "refused" in message.inner_text(), timeout=30)
    text = message.inner_text()
    page.wait_for_timeout(500)  # time for an injected onerror to fire
    assert dialogs == []
    assert page.evaluate("window.__xss") is None
    if "XSS" in attack:
        assert "<img" in text  # shown as text, not rendered as an element
    assert rss.growth_mb < RSS_SLACK_MB
    assert run_config(app.network, app.training) == before
    assert app.controller.initial_weights is None
    assert status(page)["status"] == "idle"


def test_300_layer_url_is_refused_before_building_and_the_page_works(served, guarded):
    # The cost is bounded structurally (the URL is refused before any layer is built), not by a
    # wall-clock bound that a loaded machine would break: before, the server built all 300.
    sizes = "-".join(["1"] * 300)
    page = open_app(guarded, f"{served.url}/?sizes={sizes}")
    alert = page.locator(".url-message p").first
    alert.wait_for(timeout=30_000)
    assert "URL refused" in alert.inner_text() and "sizes" in alert.inner_text()
    app = served.apps[-1]
    assert app.network.sizes == [2]  # the preset's network, untouched
    assert sizes not in page.url  # the URL now mirrors the setup it shows
    page.get_by_role("button", name="Step").click()
    wait_until(lambda: status(page).get("steps", 0) >= 1, timeout=30)


def test_xss_in_the_url_is_shown_as_text(served, guarded):
    dialogs = watch_scripts(guarded)
    page = open_app(guarded, f"{served.url}/?preset={XSS}")
    alert = page.locator(".url-message p").first
    alert.wait_for(timeout=10_000)
    page.wait_for_timeout(500)
    assert "<img" in alert.inner_text()
    assert dialogs == [] and page.evaluate("window.__xss") is None
