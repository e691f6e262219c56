"""Browser-test fixtures: the system Chromium, a served app per test, no request off localhost."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    if os.environ.get("BATSCOPE_REQUIRE_BROWSER") and not Path(CHROMIUM).exists():
        # CI sets this: a missing browser must fail the run, not skip the browser tests.
        raise pytest.UsageError(f"BATSCOPE_REQUIRE_BROWSER is set but no Chromium at {CHROMIUM}")
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.browser)
            if not Path(CHROMIUM).exists():
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"Chromium not found at {CHROMIUM}: install it (Debian: `apt-get "
                        "install chromium`) or set CHROMIUM_PATH"
                    )
                )


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
        ],
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http_ok(url: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def wait_until(pred, timeout: float = 20.0, interval: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def serve_in_process(pages):
    """Serve ``pages`` (one app function, or ``{path: function}``) on a free port in a thread,
    as ``batscope serve`` would; returns ``(server, url)`` once it answers."""
    import panel as pn

    port = free_port()
    # The session lifetime must outlast the first paint: a session discarded before the
    # browser's websocket connects is rebuilt by Bokeh without Panel's local-CSS patch, and
    # that page then asks cdn.holoviz.org for stylesheets (the CLI uses 60 s).
    server = pn.serve(
        pages,
        port=port,
        threaded=True,
        show=False,
        liveness=True,
        check_unused_sessions_milliseconds=500,
        unused_session_lifetime_milliseconds=10_000,
    )
    url = f"http://localhost:{port}"
    wait_http_ok(f"{url}/liveness")
    return server, url


def stop_process_group(proc) -> None:
    """End ``proc`` (started with ``start_new_session=True``) and everything it started: the
    ``batscope serve`` CLI and its server; SIGKILL for a server still shutting down after 10 s."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def stop_apps(apps) -> None:
    """Stop every worker of the served sessions' apps (training, both sweeps)."""
    for app in apps:
        for ctrl in (app.controller, app.sweep, app.grid_sweep):
            ctrl.shutdown()


class Served:
    """The app served in-process; ``apps`` collects every session's BatscopeApp."""

    def __init__(self):
        import batscope.app.warm  # noqa: F401  (compiles the kernels once, as `--setup` does)
        from batscope.app.factory import create_app, prepare_session

        self.apps = []

        def make():  # as app/main.py builds each session
            prepare_session()
            app = create_app()
            self.apps.append(app)
            return app.template

        self.server, self.url = serve_in_process(make)

    def stop(self):
        stop_apps(self.apps)
        self.server.stop()


@pytest.fixture(scope="module")
def served():
    s = Served()
    yield s
    s.stop()


@pytest.fixture
def guarded(context):
    """A browser context whose requests must stay on localhost; console errors are collected."""
    off_host, errors = [], []

    def off_localhost(url: str) -> bool:
        return not url.startswith(("data:", "blob:")) and urlparse(url).hostname not in LOCAL_HOSTS

    def refuse(r):
        off_host.append(r.request.url)
        r.abort()

    # every URL is matched; only other hosts are intercepted (intercepting local requests too
    # would slow the first paint past the session lifetime)
    context.route(off_localhost, refuse)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.off_host, page.errors = off_host, errors
    yield page
    assert off_host == [], f"requests left localhost: {off_host}"


SOURCES_LOOP_JS = """() => {
  const pick = PICK;
  const out = [];
  for (const doc of window.Bokeh.documents) {
    const models = doc.all_models ?? doc._all_models;
    for (const m of (models.values ? models.values() : models)) {
      if (!m.data || !m.type || !m.type.includes("ColumnDataSource")) continue;
      const v = pick(m.data instanceof Map ? Object.fromEntries(m.data) : m.data, m);
      if (v !== undefined) out.push(v);
    }
  }
  return out;
}"""


def sources_js(pick: str) -> str:
    """A page function listing ``pick(d, m)`` for each Bokeh data source ``m`` of the page
    (``d``: its columns as an object), leaving out the sources where it is undefined."""
    return SOURCES_LOOP_JS.replace("PICK", pick, 1)


def open_app(page, url: str):
    page.goto(url)
    page.locator(".run-status p").first.wait_for(timeout=30_000)
    return page


def open_tab(page, name: str):
    """Click the main tab ``name`` (its views are built when it is first shown)."""
    page.locator(".bk-tab").filter(has_text=re.compile(f"^{re.escape(name)}$")).first.click()


def open_card(page, title: str):
    """Open the sidebar card whose title starts with ``title`` ("Network", "Training", "Run"):
    the settings cards start collapsed and are built when first opened."""
    header = page.locator(".card-header").filter(has_text=re.compile(rf"^\W*{re.escape(title)}\b"))
    header.first.click()
    return header.first


def click(page, label: str):
    page.get_by_role("button", name=label).click()


def wait_status(page, pred, timeout: float = 30.0) -> dict:
    """Poll the status line until ``pred(status_dict)`` holds; returns the dict."""
    return wait_until(lambda: (lambda s: s if pred(s) else None)(status(page)), timeout)


def set_input(page, name: str, value) -> None:
    box = page.locator(f".input-{name} input").first
    box.fill(str(value))
    box.press("Enter")


def status(page) -> dict:
    """The run-status line parsed: {'status': 'running', 'epoch': 3, 'steps': 3, ...}."""
    text = page.locator(".run-status p").first.inner_text()
    out = {}
    for part in text.split("\n")[0].split("|"):
        key, _, value = part.strip().partition(" ")
        value = value.strip()
        if key == "status:":
            out["status"] = value
        elif key in ("epoch", "batch"):
            out[key] = int(value.split("/")[0])
        elif key == "step":
            out["steps"] = int(value)
        elif key == "train":
            out["accuracy"] = float(value.split()[1])
    return out


def shot(page, name: str):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
