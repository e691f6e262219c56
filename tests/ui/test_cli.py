"""The real command line once: `panel serve app/main.py` (what `batscope serve` runs)."""

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from .conftest import click, open_app, status, wait_status  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_server():
    cmd = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(ROOT / "app" / "main.py"),
        "--port",
        "0",
        "--liveness",
        "--unused-session-lifetime",
        "60000",
        "--check-unused-sessions",
        "10000",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found, lines = {}, []

    def read():
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"Bokeh app running at: (http://localhost:\d+/\w+)", line)
            if m:
                found["url"] = m.group(1)

    threading.Thread(target=read, daemon=True).start()
    try:
        for _ in range(600):
            if "url" in found or proc.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert "url" in found, "".join(lines)
        yield found["url"]
    finally:
        proc.terminate()
        proc.wait(10)


def test_cli_serves_the_app(cli_server, guarded):
    page = open_app(guarded, cli_server)
    assert status(page)["status"] == "idle"
    click(page, "Step ›")
    s = wait_status(page, lambda s: s["steps"] == 1, timeout=60)
    assert s["status"] == "paused"
    assert guarded.errors == []
