"""Issue 14 in the browser: the NIR download of the Code & export tab and the Yin-Yang prediction
scatter that follows the training."""

import re

import numpy as np
import pytest

pytest.importorskip("playwright")

from .conftest import click, open_app, open_tab, shot, wait_status, wait_until  # noqa: E402


def newest_app(served, before: int):
    wait_until(lambda: len(served.apps) > before)
    return served.apps[-1]


def test_nir_download_of_the_trained_network(served, guarded, tmp_path):
    nir = pytest.importorskip("nir")
    from batscope.datasets.toy import toy_task
    from batscope.engine.network import Network

    n = len(served.apps)
    page = open_app(guarded, served.url)  # the convergence preset: 4 → 2
    app = newest_app(served, n)
    click(page, "Step ›")
    wait_status(page, lambda s: s["steps"] == 1 and s["status"] == "paused")
    open_tab(page, "Code & export")
    button = page.locator(".download-nir button").first
    button.wait_for(timeout=20_000)
    with page.expect_download(timeout=30_000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == "batscope-model.nir"
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    back = Network.from_nir(nir.read(path))
    net = app.controller.current_network()  # the paused run's trained network
    inp, t_max = toy_task("convergence").inputs, app.training.t_max
    for a, b in zip(net.forward(inp, t_max), back.forward(inp, t_max), strict=True):
        np.testing.assert_array_equal(a.numpy().times, b.numpy().times)
    assert guarded.errors == []


def test_yin_yang_scatter_appears_and_follows_the_training(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url + "?preset=yin-yang")
    app = newest_app(served, n)
    assert app.training.task == "yin-yang"
    open_tab(page, "Learning")
    wait_until(lambda: "predictions" in app.views)
    view = app.views["predictions"]
    click(page, "▶ Play")
    wait_until(lambda: view.step >= 0, timeout=60)  # the first map, before any step
    first = view.step
    # the outputs first all fire S times (a tie: class 0); the map separates as it learns
    wait_until(lambda: len(set(view.source.data["prediction"])) > 1, timeout=120)
    assert view.step > first
    info = page.get_by_text(re.compile("test points predicted right")).first
    info.wait_for(timeout=20_000)
    assert view.pane.visible and view.fig.visible
    click(page, "❚❚ Pause")
    wait_status(page, lambda s: s["status"] == "paused")
    page.wait_for_timeout(1500)  # the last map has arrived: its line is no longer replaced
    info.scroll_into_view_if_needed()
    info.hover()
    page.mouse.wheel(0, 350)  # the scatter below its line into the screenshot
    page.wait_for_timeout(1500)  # the figure has painted
    shot(page, "yin-yang-scatter")
    assert guarded.errors == []
