"""Regenerate the README screenshots in assets/screenshots/ from a served app.

Usage: python scripts/readme_screenshots.py  (needs Debian's chromium and playwright).
Serves ``create_app`` on a free local port, trains the convergence task, runs the
convergence sweep, and captures each tab at 1600 x 1000.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import panel as pn
from batscope.app.factory import create_app
from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[1] / "assets" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tab(page, name: str, wait_s: float = 2.0) -> None:
    page.get_by_role("tab", name=name).click()
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
            page.wait_for_function(
                "document.querySelector('.run-status p').innerText.includes('finished')",
                timeout=120_000,
            )
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
                page.screenshot(path=str(OUT / f"{name}.png"))
            _tab(page, "Convergence")
            page.get_by_role("button", name="Run sweep").click()
            page.wait_for_function(
                "document.querySelector('.sweep-status').innerText.includes('finished')",
                timeout=300_000,
            )
            time.sleep(2)
            page.screenshot(path=str(OUT / "tab-convergence.png"))
            browser.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
