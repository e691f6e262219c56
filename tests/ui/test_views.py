"""Live views in the browser: a click on the raster picks the neuron whose membrane is traced."""

import pytest

pytest.importorskip("playwright")

from .conftest import click, open_app, shot, wait_status, wait_until  # noqa: E402


def test_clicking_the_raster_traces_that_neuron(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url + "?sizes=20-2")  # layer 1: 20 hidden neurons
    wait_until(lambda: len(served.apps) > n)
    app = served.apps[-1]
    for _ in range(2):
        click(page, "Step ›")
    wait_status(page, lambda s: s["steps"] == 2)
    raster, membrane = app.views["raster"], app.views["membrane"]
    wait_until(lambda: len(raster.exact_source.data["t"]) > 0)
    assert app.view_config.neurons == [0] and raster.layer == 1
    top = int(raster._activity[1].counts.nonzero()[0].max())  # highest firing neuron
    page.wait_for_timeout(1000)  # the raster has painted
    canvas = page.locator(".bk-Canvas").first  # the Activity tab's first plot: the raster
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.45})
    wait_until(lambda: app.view_config.neurons != [0])
    (neuron,) = app.view_config.neurons
    assert 1 <= neuron <= top and app.view_config.layer == 1
    # the worker traces the new neuron in its next snapshot (published while paused too)
    wait_until(lambda: membrane._window is not None and membrane._window[1] == [neuron])
    assert any(
        item.visible and item.label.value == f"neuron {neuron}" for item in membrane.trace_items
    )
    page.get_by_text(f"neurons [{neuron}]").first.wait_for(timeout=10_000)
    box = page.locator(".input-neurons input").first
    wait_until(lambda: box.input_value() == str(neuron))  # the input follows the click
    shot(page, "raster-click-membrane")
    assert guarded.errors == []
