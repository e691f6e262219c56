"""A room's view of the shared server: the queue place in the status line, the memory estimate
beside the builder, a refused run's message in the page."""

import pytest

pytest.importorskip("playwright")

from batscope.engine.slots import TRAINING_SLOTS  # noqa: E402
from batscope.training.resources import MemoryBroker  # noqa: E402

from .conftest import click, open_app, open_card, set_input, status, wait_status, wait_until  # noqa: E402


def run_status_text(page) -> str:
    """Every paragraph of the status line (its message comes after the first)."""
    return "\n".join(page.locator(".run-status p").all_inner_texts())


def test_queued_participant_sees_the_place_and_then_trains(served, guarded):
    page = open_app(guarded, served.url)
    held = 0
    while TRAINING_SLOTS.acquire(blocking=False):  # the room's slots are all taken
        held += 1
    ahead = TRAINING_SLOTS.ticket()  # and someone else waits already
    try:
        click(page, "▶ Play")
        wait_status(page, lambda s: s["status"] == "queued")
        wait_until(lambda: "place 2 in the queue" in run_status_text(page))
        ahead.leave()
        wait_until(lambda: "place 1 in the queue" in run_status_text(page))
    finally:
        ahead.leave()
        for _ in range(held):
            TRAINING_SLOTS.release()
    wait_status(page, lambda s: s["status"] in ("running", "finished"))
    assert "in the queue" not in run_status_text(page)
    assert guarded.errors == []


def test_builder_shows_the_estimate_and_play_refuses_what_does_not_fit(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url)
    wait_until(lambda: len(served.apps) > n)
    app = served.apps[-1]
    app.account.broker = MemoryBroker(10**9, 50_000)  # this session may reserve 50 kB
    open_card(page, "Network")
    estimate = page.locator(".memory-estimate p").first
    wait_until(lambda: "a run needs about" in estimate.inner_text())
    assert "Play will be refused" not in estimate.inner_text()
    set_input(page, "n_max", 1000)  # the first layer's spike buffer S
    wait_until(lambda: "Play will be refused" in estimate.inner_text())
    assert "more than this session's 50.0 kB budget" in estimate.inner_text()
    click(page, "▶ Play")
    wait_until(lambda: "This run needs" in run_status_text(page))
    assert "a session may use at most 50.0 kB" in run_status_text(page)
    assert status(page)["status"] == "idle" and app.controller.run is None
    assert guarded.errors == []
