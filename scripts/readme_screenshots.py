"""Regenerate the README screenshots in assets/screenshots/ from a served app.

Usage: python scripts/readme_screenshots.py  (needs Debian's chromium and playwright).
Serves ``create_app`` on a free local port, trains the convergence task, runs the
convergence sweep, and captures each tab at 1600 x 1000.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from pathlib import Path

import panel as pn
from batscope.app.factory import create_app
from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "assets" / "screenshots"
ACTIONS = {
    "Gradient check": "Run gradient check",
    "Precision": "Compare",
}  # buttons that fill a tab
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_text(page, selector: str, text: str, timeout_s: float) -> None:
    """Poll a (shadow-DOM piercing) locator until its text contains ``text``."""
    end = time.monotonic() + timeout_s
    while text not in page.locator(selector).first.inner_text():
        if time.monotonic() > end:
            raise TimeoutError(f"{selector} never showed {text!r}")
        time.sleep(0.5)


def _tab(page, name: str, wait_s: float = 2.0) -> None:
    pattern = re.compile(f"^{re.escape(name)}$")
    page.locator(".bk-tab").filter(has_text=pattern).first.click()
    time.sleep(wait_s)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    server = pn.serve(create_app, port=port, threaded=True, show=False)
    time.sleep(3)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(f"http://localhost:{port}/")
            page.locator(".run-status p").first.wait_for(timeout=60_000)
            page.get_by_role("button", name="▶ Play").click()
            _wait_text(page, ".run-status p", "finished", 120)
            time.sleep(1.5)
            for tab, name in [
                ("Activity", "tab-activity"),
                ("Learning", "learning-after-training"),
                ("Sparsity & latency", "tab-sparsity-latency"),
                ("Toy editor", "tab-toy-editor"),
                ("Gradient check", "tab-gradient-check"),
                ("Precision", "tab-precision"),
                ("Code & export", "tab-code-export"),
            ]:
                _tab(page, tab)
                if tab in ACTIONS:
                    page.get_by_role("button", name=ACTIONS[tab]).first.click()
                    time.sleep(4)
                page.screenshot(path=str(OUT / f"{name}.png"))
            _tab(page, "Convergence")
            page.get_by_role("button", name="Run sweep").click()
            done = re.compile(r"finished · cells (\d+)/\1")
            page.get_by_text(done).first.wait_for(timeout=300_000)
            time.sleep(2)
            page.screenshot(path=str(OUT / "tab-convergence.png"))
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
