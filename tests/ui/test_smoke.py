"""The page loads offline: no console error, no request off localhost."""

import pytest

pytest.importorskip("playwright")

from .conftest import open_app, shot, status  # noqa: E402


def test_page_loads_clean(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url)
    assert len(served.apps) == n + 1  # one session, never rebuilt
    assert status(page)["status"] == "idle"
    page.wait_for_timeout(500)
    shot(page, "app-idle")
    assert guarded.errors == []
