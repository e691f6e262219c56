"""MetricsView: every row reaches its split's source, streamed (only new rows travel)."""

import numpy as np
from batscope.training.telemetry import MetricRow, Snapshot
from batscope.widgets.metrics import SPLITS, MetricsView
from bokeh.document.events import ColumnsStreamedEvent
from bokeh.models import HoverTool


def _snap(rows):
    return Snapshot(step=rows[-1].step, epoch=0, batch=0, n_batches=1, epochs=1, rows=tuple(rows))


def _listed(fig) -> list:
    return [item.label.value for item in fig.legend[0].items if item.visible]


def test_empty_state_renders(served):
    view = MetricsView()
    served(view)
    for fig in (view.loss, view.accuracy):
        assert [item.label.value for item in fig.legend[0].items] == list(SPLITS)
        assert _listed(fig) == []  # a split is listed once it has rows
        (hover,) = fig.select(HoverTool)
        assert len(hover.renderers) == 3


def test_rows_of_every_split_are_streamed(served):
    view = MetricsView()
    events = served(view)
    train = [MetricRow(i, 0, "train", 1.0 / (i + 1), 0.1 * i) for i in range(5)]
    view.update([_snap(train[:3]), _snap([*train[3:], MetricRow(4, 1, "val", 0.5, 0.6)])])
    streamed = [e for e in events if isinstance(e, ColumnsStreamedEvent)]
    assert len(streamed) == 2  # one stream per split that got rows, with only those rows
    assert list(streamed[0].data["step"]) == [0, 1, 2, 3, 4]
    src = view.sources
    assert list(src["train"].data["step"]) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(src["train"].data["accuracy"], [0, 10, 20, 30, 40])
    assert len(src["val"].data["step"]) == 1 and len(src["test"].data["step"]) == 0
    assert _listed(view.loss) == _listed(view.accuracy) == ["train", "val"]  # no test row yet
    view.update([_snap([MetricRow(5, 1, "train", 0.1, 0.9), MetricRow(5, 1, "test", 0.2, 0.8)])])
    assert list(src["train"].data["step"]) == [0, 1, 2, 3, 4, 5]
    assert list(src["test"].data["loss"]) == [0.2]
    assert src["train"].data["accuracy"][-1] == 90.0
    # both figures draw from the same sources
    for fig, metric in ((view.loss, "loss"), (view.accuracy, "accuracy")):
        lines = {r.name: r for r in fig.renderers}
        assert lines["train"].data_source is src["train"]
        assert lines["train"].glyph.y == metric
        assert lines["train"].glyph.line_width < lines["val"].glyph.line_width
    assert _listed(view.accuracy) == list(SPLITS)
    view.reset()
    assert all(len(src[s].data["step"]) == 0 for s in SPLITS)
    assert _listed(view.loss) == _listed(view.accuracy) == []


def test_the_same_snapshot_twice_sends_nothing(served):
    view = MetricsView()
    snap = _snap([MetricRow(1, 0, "train", 0.5, 0.5)])
    view.update([snap])
    events = served(view)
    view.update([snap])
    assert events == []
    assert list(view.sources["train"].data["step"]) == [1]


def test_figures_follow_svg_export():
    view = MetricsView()
    view.view_config.svg_export = True
    assert view.loss.output_backend == view.accuracy.output_backend == "svg"
    view.view_config.svg_export = False
    assert view.loss.output_backend == "canvas"


def test_series_caps_the_points_with_bucket_means():
    from batscope.widgets.metrics import Series

    series = Series(max_points=8)
    rng = np.random.default_rng(0)
    loss, acc = rng.random(37), rng.random(37)
    series.extend(np.arange(5), loss[:5], acc[:5])
    assert series.take()[0] == "stream" and series.take() is None  # nothing new: nothing sent
    series.extend(np.arange(5, 37), loss[5:], acc[5:])
    how, points = series.take()
    assert how == "replace" and series.stride == 8  # 37 rows: 4 full buckets of 8 (<= 8 points)
    np.testing.assert_allclose(points["loss"], loss[:32].reshape(4, 8).mean(axis=1))
    np.testing.assert_allclose(points["accuracy"], acc[:32].reshape(4, 8).mean(axis=1))
    assert list(points["step"]) == [7, 15, 23, 31] and list(points["n"]) == [8] * 4
    series.extend(np.arange(37, 48), rng.random(11), rng.random(11))
    how, points = series.take()  # 48 rows: buckets 4 and 5 are new, streamed alone
    assert how == "stream" and list(points["step"]) == [39, 47]


def test_a_long_fast_run_keeps_the_line_short(served):
    from batscope.widgets.metrics import MAX_POINTS

    view = MetricsView()
    events = served(view)
    for chunk in range(25):
        rows = [MetricRow(i, 0, "train", 1.0, 0.5) for i in range(chunk * 400, (chunk + 1) * 400)]
        view.update([_snap(rows)])
    data = view.sources["train"].data
    assert MAX_POINTS // 2 <= len(data["step"]) <= MAX_POINTS
    assert view.series["train"].size == 10_000  # every row is kept
    assert data["step"][-1] == 10_000 - 1 - 10_000 % view.series["train"].stride
    assert any(not isinstance(e, ColumnsStreamedEvent) for e in events)  # one re-bucketing
    assert sum(isinstance(e, ColumnsStreamedEvent) for e in events) >= 20
