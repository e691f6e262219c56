"""Opening a run folder of the server's (``batscope serve --runs``) in the browser: the run is
picked from the server's list, its record fills the curves and the sparsity history, and any test
sample of its model is drawn in the raster (points read from the page's Bokeh sources)."""

import pytest

pytest.importorskip("playwright")

from .conftest import open_app, shot, sources_js, wait_status, wait_until  # noqa: E402
from .test_conv_builder import RASTER_POINTS_JS  # noqa: E402

NAME = "tiny/seed-0"
# the lengths of the page's non-empty sparsity-history lines (sources with epoch, value, layer)
HISTORY_LINES_JS = sources_js(
    '(d) => ("epoch" in d && "value" in d && "layer" in d && d.epoch.length '
    "? d.epoch.length : undefined)"
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run written by a short real ``batscope train``."""
    from tests.training.test_train_cli import tiny_config, train

    tmp = tmp_path_factory.mktemp("runs")
    assert train("--config", tiny_config(tmp, epochs=1, n_train=100), "--out", tmp / "runs") == 0
    return tmp / "runs"


def test_open_a_run_folder_and_explore_a_test_sample(served, guarded, runs, monkeypatch):
    monkeypatch.setenv("BATSCOPE_RUNS_DIR", str(runs))  # read when the session is built
    n = len(served.apps)
    page = open_app(guarded, served.url)
    wait_until(lambda: len(served.apps) > n)
    app = served.apps[-1]
    page.get_by_text("Open a run folder").first.click()  # the card, collapsed at first
    select = page.locator(".run-select select").first
    wait_until(lambda: select.input_value() == NAME)  # the server's list, nothing typed
    page.locator(".run-open button").first.click()
    wait_status(page, lambda s: s["status"] == "paused")
    page.get_by_text(f"Run {NAME} opened").first.wait_for(timeout=30_000)
    assert app.controller.opened == NAME and app.network.sizes == [30, 10]
    # a test sample of the model: the raster holds a point for every spike of layer 1
    app.view_config.sample_index = 5
    wait_until(
        lambda: app.controller.last is not None and app.controller.last.sample_index == 5, 60
    )
    spikes = int(app.controller.last.activity[1].counts.sum())
    assert spikes > 0
    wait_until(lambda: spikes in page.evaluate(RASTER_POINTS_JS), 30)
    # the record's history: its test-accuracy curve and its sparsity over epochs 0 and 1
    page.locator(".bk-tab").filter(has_text="Sparsity & latency").first.click()
    sparsity = wait_until(lambda: app.views.get("sparsity"))  # built when first shown
    wait_until(lambda: sorted(set(sparsity.history["epoch"])) == [0.0, 1.0], 30)
    assert set(sparsity.history["layer"]) == {"input", "layer 1", "layer 2"}
    # in the browser: one history line per layer, each with its two epochs
    wait_until(lambda: sorted(page.evaluate(HISTORY_LINES_JS)) == [2, 2, 2], 30)
    shot(page, "run-folder-opened")
    assert guarded.errors == []
