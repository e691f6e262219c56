"""A conv net built in the browser: conv and pool layers added through the builder's widgets,
trained a few steps, and the Activity tab's raster filled with the conv layer's spikes."""

import pytest

pytest.importorskip("playwright")

from .conftest import (  # noqa: E402
    click,
    open_app,
    open_card,
    shot,
    sources_js,
    wait_status,
    wait_until,
)

# the lengths of the page's data sources that hold raster points (t, neuron)
RASTER_POINTS_JS = sources_js('(d) => ("t" in d && "neuron" in d ? d.t.length : undefined)')


def card(page, i: int):
    return page.locator(".layer-card").nth(i)


def test_build_a_conv_net_in_the_builder_and_train_it(served, guarded):
    n = len(served.apps)
    page = open_app(guarded, served.url + "?preset=mnist-multi&sizes=20-10&batch=5")
    wait_until(lambda: len(served.apps) > n)
    app = served.apps[-1]
    assert app.network.sizes == [20, 10]
    open_card(page, "Network")
    card(page, 0).locator(".input-kind select").select_option("conv")
    wait_until(lambda: app.network.layers[0].kind == "conv")
    for name, value in (("channels", 4), ("n_max", 3)):
        box = card(page, 0).locator(f".input-{name} input")
        box.fill(str(value))
        box.press("Enter")
    wait_until(lambda: app.network.layers[0].channels == 4 and app.network.layers[0].n_max == 3)
    card(page, 0).get_by_text("24×24×4 = 2304 neurons").wait_for(timeout=10_000)
    click(page, "+ add layer")  # a copy of the conv layer, before the output
    wait_until(lambda: page.locator(".layer-card").count() == 3)
    card(page, 1).locator(".input-kind select").select_option("pool")
    wait_until(lambda: [s.kind for s in app.network.layers] == ["conv", "pool", "dense"])
    card(page, 1).get_by_text("12×12×4 = 576 neurons").wait_for(timeout=10_000)
    assert app.network.shapes == [(28, 28, 1), (24, 24, 4), (12, 12, 4), (10,)]
    page.locator(".memory-estimate").get_by_text("a run needs").wait_for(timeout=10_000)
    for k in range(1, 4):
        click(page, "Step ›")
        wait_status(page, lambda s, k=k: s["steps"] == k, timeout=60)
    trainer = app.controller.run.trainer
    assert [type(x).__name__ for x in trainer.network.layers] == ["Conv2D", "Pool2D", "Dense"]
    assert app.view_config.layer == 1  # the raster shows the conv layer
    # the browser holds a raster point for every spike of the conv layer's displayed sample
    spikes = int(app.controller.last.activity[1].counts.sum())
    assert spikes > 0
    wait_until(lambda: spikes in page.evaluate(RASTER_POINTS_JS), 30)
    shot(page, "conv-builder-trained")
    assert guarded.errors == []
