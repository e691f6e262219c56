"""Driving the served app like a user: build, train, play/pause/step/reset, tabs, isolation."""

import logging
import re
import threading

import pytest

pytest.importorskip("playwright")

from .conftest import (  # noqa: E402
    click,
    open_app,
    open_card,
    set_input,
    shot,
    sources_js,
    status,
    wait_status,
    wait_until,
)

TABS = [
    "Activity",
    "Learning",
    "Convergence",
    "Sweeps",
    "Sparsity & latency",
    "Toy editor",
    "Gradient check",
    "Precision",
    "Code & export",
]


def open_tab(page, name: str):
    page.locator(".bk-tab").filter(has_text=re.compile(f"^{re.escape(name)}$")).first.click()


def newest_app(served, before: int):
    wait_until(lambda: len(served.apps) > before)
    return served.apps[-1]


def _builder_with_a_hidden_layer(served, page):
    """A new page's Network card opened and a hidden layer added: ``(app, layer cards)``."""
    n = len(served.apps)
    open_app(page, served.url)
    app = newest_app(served, n)
    open_card(page, "Network")
    cards = page.locator(".layer-card")
    cards.first.wait_for(timeout=10_000)
    assert cards.count() == 1
    click(page, "+ add layer")
    wait_until(lambda: cards.count() == 2)
    assert app.network.sizes == [2, 2]
    return app, cards


def test_build_and_train_convergence_to_100_percent(served, guarded):
    page = guarded
    app, cards = _builder_with_a_hidden_layer(served, page)
    set_input(page, "size", 5)  # the hidden layer's N (first card)
    wait_until(lambda: app.network.sizes == [5, 2])
    page.get_by_role("button", name="✕").first.click()  # and take it out again
    wait_until(lambda: cards.count() == 1)
    assert app.network.sizes == [2]
    click(page, "▶ Play")
    s = wait_status(page, lambda s: s["status"] == "finished", timeout=60)
    assert s["epoch"] == 50
    assert max(r.accuracy for r in app.controller.history) == 1.0
    assert s["accuracy"] == 100.0
    open_tab(page, "Learning")  # its views were held while hidden, and get every row now
    wait_until(lambda: "metrics" in app.views)  # built when its tab is first shown
    wait_until(lambda: len(app.views["metrics"].sources["train"].data["step"]) == 50)
    page.wait_for_timeout(2500)  # a tab is built and drawn on its first show
    shot(page, "learning-after-training")
    assert page.locator(".prediction-map").count() == 1  # drawn, and hidden: no plane here
    assert not page.locator(".prediction-map").is_visible()
    assert guarded.errors == []


def test_a_click_right_after_typing_is_applied_without_a_server_error(served, guarded, caplog):
    """Type a size and click a button at once, as people do: the blur sends the value and the
    click together, and Panel handles a click that arrives while a value is pending outside
    the document lock. The click must still apply and redraw the card's title, and the server
    log no error (nor leave a document on Bokeh's curdoc stack: tests/conftest.py)."""
    page = guarded
    app, cards = _builder_with_a_hidden_layer(served, page)
    size = page.locator(".input-size input:visible").first
    size.fill("7")  # no Enter: the click's blur sends the value with the click
    page.get_by_role("button", name="✕").first.click()
    wait_until(lambda: cards.count() == 1)
    assert app.network.sizes == [2]
    click(page, "+ add layer")
    wait_until(lambda: cards.count() == 2)
    size.fill("9")
    click(page, "+ add layer")
    wait_until(lambda: cards.count() == 3)
    wait_until(lambda: app.network.sizes == [9, 9, 2])
    title = page.locator(".card-title p").filter(has_text="Network:").first
    wait_until(lambda: "9-9-2" in title.inner_text())  # a raw Bokeh model, redrawn
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_play_pause_step_reset(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url)
    app = newest_app(served, n)
    open_card(page, "Training")
    set_input(page, "epochs", 100000)
    wait_until(lambda: app.training.epochs == 100000)
    click(page, "▶ Play")
    wait_status(page, lambda s: s["status"] == "running")
    first = wait_status(page, lambda s: s["epoch"] >= 1)["epoch"]
    wait_status(page, lambda s: s["epoch"] > first)
    click(page, "❚❚ Pause")
    wait_status(page, lambda s: s["status"] == "paused")
    page.wait_for_timeout(600)  # a batch in flight when Pause landed has been reported
    steps = status(page)["steps"]
    page.wait_for_timeout(400)
    assert status(page)["steps"] == steps  # paused means paused
    click(page, "Step ›")
    wait_status(page, lambda s: s["steps"] == steps + 1)
    page.wait_for_timeout(600)
    after = status(page)
    assert after["steps"] == steps + 1 and after["status"] == "paused"
    assert app.controller.run.trainer.step_count == steps + 1
    click(page, "↺ Reset")
    s = wait_status(page, lambda s: s["status"] == "idle")
    assert s["steps"] == 0 and app.controller.run is None and app.controller.history == []
    assert guarded.errors == []


def test_every_tab_renders_without_console_errors(served, guarded):
    page = open_app(guarded, served.url)
    for _ in range(3):
        click(page, "Step ›")
    wait_status(page, lambda s: s["steps"] == 3)
    for name in TABS:
        open_tab(page, name)
        page.wait_for_timeout(2000)  # built and drawn on its first show
        shot(page, "tab-" + name.lower().replace(" & ", "-").replace(" ", "-"))
    assert guarded.errors == []


def test_two_users_are_isolated(served, browser):
    n = len(served.apps)
    ctx_a, ctx_b = browser.new_context(), browser.new_context()
    try:
        a = open_app(ctx_a.new_page(), served.url + "?epochs=100000")
        b = open_app(ctx_b.new_page(), served.url)
        wait_until(lambda: len(served.apps) >= n + 2)
        app_a, app_b = served.apps[n], served.apps[n + 1]
        assert app_a.controller is not app_b.controller
        click(a, "▶ Play")
        wait_status(a, lambda s: s["status"] == "running" and s["epoch"] > 2)
        assert status(b)["status"] == "idle" and app_b.controller.run is None
        click(b, "Step ›")  # both train at once
        wait_status(b, lambda s: s["steps"] == 1)
        sa = wait_status(a, lambda s: s["steps"] > 5)["steps"]
        b.wait_for_timeout(500)
        assert status(b)["steps"] == 1 and status(b)["status"] == "paused"
        assert app_a.controller.steps >= sa and app_b.controller.steps == 1
        assert app_b.training.epochs == 50 and app_a.training.epochs == 100000
    finally:
        ctx_a.close()
        ctx_b.close()


def test_closing_the_tab_stops_its_run(served, browser):
    n = len(served.apps)
    ctx = browser.new_context()
    page = open_app(ctx.new_page(), served.url + "?epochs=100000")
    app = newest_app(served, n)
    click(page, "▶ Play")
    wait_status(page, lambda s: s["status"] == "running" and s["steps"] > 2)
    run = app.controller.run
    assert run.alive
    ctx.close()
    wait_until(lambda: app.controller.run is None and not run.alive, timeout=30)
    assert not any(
        t.name == "batscope-training" and t.is_alive() and t is run._thread
        for t in threading.enumerate()
    )


def test_url_sets_seed_and_learning_rate(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url + "?seed=7&lr=0.001")
    app = newest_app(served, n)
    # the Training card and its "Run" card start collapsed and draw their inputs when opened
    open_card(page, "Training")
    open_card(page, "Run")
    assert page.locator(".input-seed input").first.input_value() == "7"
    assert float(page.locator(".input-lr input").first.input_value()) == 0.001
    assert (app.training.seed, app.training.lr) == (7, 0.001)
    assert "seed=7" in page.url and "lr=0.001" in page.url


# each convergence heatmap's cells as the page holds them: [cells, of which grey (NaN)]
HEATMAP_CELLS_JS = sources_js(
    '(d) => ("cell_mu" in d && d.image.length ? '
    "[Array.from(d.image[0]).length, Array.from(d.image[0]).filter(Number.isNaN).length] "
    ": undefined)"
)


def test_convergence_sweep_fills_and_a_tap_drills_down(served, guarded):
    """Paper Fig. 3 through the UI: both heatmaps fill in, in the page as on the server (they
    once stopped after their first chunk in the browser), and tapping a cell re-runs one run."""
    n = len(served.apps)
    page = open_app(guarded, served.url)
    app = newest_app(served, n)
    open_tab(page, "Convergence")
    page.wait_for_timeout(1500)
    click(page, "Run sweep")
    page.get_by_text(re.compile(r"finished · cells (\d+)/\1")).first.wait_for(timeout=120_000)
    assert app.sweep.status == "finished" and app.sweep.cells_done == app.sweep.cells_total
    n_cells = app.sweep.cells_total // 2  # each variant's map
    wait_until(lambda: page.evaluate(HEATMAP_CELLS_JS) == [[n_cells, 0], [n_cells, 0]], 10)
    plot = page.locator(".bk-Canvas").nth(1)  # the multi-spike heatmap (second plot)
    box = plot.bounding_box()
    plot.click(position={"x": box["width"] * 0.6, "y": box["height"] * 0.8})
    page.get_by_text(re.compile(r"Drill-down:\*?\*? ?\w+-spike, μ = ")).first.wait_for(
        timeout=30_000
    )
    assert app.views["convergence"].trace is not None
    shot(page, "convergence-sweep-drill-down")
    assert guarded.errors == []
