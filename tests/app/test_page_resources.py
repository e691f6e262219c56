"""Every served page carries the scripts of the widgets its tabs build later."""

from __future__ import annotations

import re
import urllib.request

import pytest

pytest.importorskip("panel")

from .test_session_cost import load_room  # noqa: E402


def test_every_page_includes_filepond_for_the_code_and_export_tab():
    """The FileDropper of Code & export is built when that tab is first shown, after its page
    was sent: each page must already hold FilePond. Only the server's first page did (Panel
    includes an extension's scripts only where the session declared it), so later
    participants' pages failed with "Cannot read properties of undefined (reading
    'registerPlugin')" when they opened the tab."""
    room = load_room()
    server = room.Server(room.free_port(), warm=False)
    try:
        server.wait_ready(120)
        for _ in range(3):
            html = urllib.request.urlopen(server.url, timeout=60).read().decode()
            scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
            assert any("filepond.min.js" in s for s in scripts), scripts
    finally:
        server.stop()
