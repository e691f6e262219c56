"""The real command line once: `batscope serve` (on 127.0.0.1, its websocket origins allowed)."""

import re
import socket
import subprocess
import sys
import threading
from urllib.parse import urlparse

import pytest

pytest.importorskip("playwright")

from .conftest import (  # noqa: E402
    click,
    open_app,
    open_tab,
    status,
    stop_process_group,
    wait_status,
)


def _serve(extra: list[str], ready: str):
    """``batscope serve --port 0 --no-warm`` plus ``extra``; yields the URL that the output line
    matching ``ready`` names, then ends the server and its processes."""
    cmd = [sys.executable, "-m", "batscope.app", "serve", "--port", "0", "--no-warm", *extra]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    found, lines = {}, []

    def read():
        for line in proc.stdout:
            lines.append(line)
            m = re.search(ready, line)
            if m:
                found["url"] = m.group(1)

    threading.Thread(target=read, daemon=True).start()
    try:
        for _ in range(1200):
            if "url" in found or proc.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert "url" in found, "".join(lines)
        yield found["url"]
    finally:
        stop_process_group(proc)


@pytest.fixture
def cli_server():
    yield from _serve([], r"Bokeh app running at: (http://127\.0\.0\.1:\d+/\w+)")


@pytest.fixture
def workers_server():
    yield from _serve(
        ["--workers", "2"], r"2 serving processes behind (http://127\.0\.0\.1:\d+/main)"
    )


def test_cli_serves_the_app(cli_server, guarded):
    page = open_app(guarded, cli_server)
    assert status(page)["status"] == "idle"
    click(page, "Step ›")
    s = wait_status(page, lambda s: s["steps"] == 1, timeout=60)
    assert s["status"] == "paused"
    assert guarded.errors == []


def test_a_later_participant_opens_code_and_export_without_errors(cli_server, context):
    """Pages served after the first carry the scripts of widgets built later (FilePond for
    the Code & export tab's file dropper): they lacked them, and opening the tab failed."""
    for page in _two_pages(context, cli_server):
        _open_code_and_export(page)


def test_cli_listens_on_this_machine_only(cli_server):
    from batscope.app.cli import lan_address

    lan = lan_address()
    if lan.startswith("127."):
        pytest.skip("this machine has no other address to try")
    port = int(urlparse(cli_server).port)
    with pytest.raises(OSError), socket.create_connection((lan, port), timeout=2):
        pass


def test_two_serving_processes_behind_one_address(workers_server, context):
    """``--workers 2``: pages opened one after another go to the two processes in turn, each
    page's websocket to its own process; both train, and the files a later tab needs (FilePond's
    scripts) come through the front."""
    pages = _two_pages(context, workers_server)
    for page in pages:
        click(page, "Step ›")
    for page in pages:
        assert wait_status(page, lambda s: s["steps"] == 1, timeout=60)["status"] == "paused"
        _open_code_and_export(page)


def _two_pages(context, url: str) -> list:
    """Two pages of ``url`` opened one after the other, each collecting its console errors."""
    pages = []
    for _ in range(2):
        page = context.new_page()
        page.errors = []
        page.on("console", lambda m, p=page: p.errors.append(m.text) if m.type == "error" else 0)
        page.on("pageerror", lambda e, p=page: p.errors.append(str(e)))
        pages.append(open_app(page, url))
    return pages


def _open_code_and_export(page) -> None:
    """Open the Code & export tab; its file dropper (FilePond) draws with no console error."""
    open_tab(page, "Code & export")
    page.locator(".filepond--root").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)
    assert page.errors == []
