"""LatencyView: accuracy and confidence against decision time, T_enc marked, several curves."""

import numpy as np
import pytest
from batscope.engine.analysis import LatencyCurve
from batscope.widgets.latency import LatencyView
from batscope.widgets.live import glyphs
from bokeh.models import HoverTool

T = np.linspace(0, 0.2, 5)
MULTI = LatencyCurve(T, np.array([0.0, 0.5, 0.98, 0.98, 0.98]), 0.1, "multi-spike")
SINGLE = LatencyCurve(T, np.array([0.0, 0.0, 0.2, 0.9, 0.96]), 0.1, "single-spike")


def _curves(view, measure="accuracy"):
    """{label: values} of the curves shown (legend entry visible) in one figure."""
    pool = view.accuracy_lines if measure == "accuracy" else view.confidence_lines
    return {
        item.label.value: src.data["value"]
        for item, src in zip(pool.items, pool.sources, strict=True)
        if item.visible
    }


def test_empty_state_renders(empty_snapshot, served):
    view = LatencyView()
    view.update([empty_snapshot])
    served(view)
    assert _curves(view) == {}
    assert not view.accuracy_t_enc.visible and not view.confidence_t_enc.visible
    assert "No latency curve" in view.info.object
    for fig in (view.accuracy, view.confidence):
        (hover,) = fig.select(HoverTool)
        assert hover.renderers == glyphs(fig)


def test_curve_values_and_t_enc(make_snapshot):
    view = LatencyView()
    view.update([make_snapshot(latency=MULTI)])
    np.testing.assert_allclose(_curves(view)["multi-spike"], 100 * MULTI.accuracy)
    np.testing.assert_allclose(view.accuracy_lines.sources[0].data["t"], T)
    np.testing.assert_allclose(
        _curves(view, "confidence")["multi-spike"], [0, 100 * 0.5 / 0.98, 100, 100, 100]
    )
    for span in (view.accuracy_t_enc, view.confidence_t_enc):
        assert span.visible and span.location == pytest.approx(0.1)
        assert span.line_dash == [6] and span.line_color == "grey"  # dashed grey
    assert list(view.accuracy_lines.sources[0].data["curve"]) == ["multi-spike"] * len(T)
    assert "100 % confidence at 100 ms" in view.info.object


def test_several_curves_and_reference(make_snapshot):
    view = LatencyView()
    view.update([make_snapshot(latency=MULTI, extra={"latency_curves": [SINGLE]})])
    assert set(_curves(view)) == {"multi-spike", "single-spike"}
    assert len({r.glyph.line_color for r in view.accuracy_lines.lines[:2]}) == 2
    view.set_reference(SINGLE, label="stored single-spike")
    view.update([make_snapshot(latency=MULTI)])
    assert set(_curves(view)) == {"multi-spike", "stored single-spike"}
    assert "stored single-spike" in view.info.object
    view.reset()  # references survive a reset of the run
    assert set(_curves(view)) == {"stored single-spike"}
    view.clear_references()
    assert _curves(view) == {} and not view.accuracy_t_enc.visible
    assert "No latency curve" in view.info.object
    with pytest.raises(TypeError, match="curve"):
        view.set_reference("not a curve")


def test_same_labels_are_told_apart(make_snapshot):
    view = LatencyView()
    view.set_reference(MULTI)
    view.update([make_snapshot(latency=MULTI)])
    assert list(_curves(view)) == ["multi-spike", "multi-spike′"]


def test_zero_final_accuracy_gives_nan_confidence(make_snapshot):
    flat = LatencyCurve(T, np.zeros(5), 0.1, "dead")
    view = LatencyView()
    view.update([make_snapshot(latency=flat)])
    assert np.isnan(_curves(view, "confidence")["dead"]).all()
    assert "never" in view.info.object


def test_the_same_snapshot_twice_sends_nothing(make_snapshot, served):
    view = LatencyView()
    snap = make_snapshot(latency=MULTI)
    view.update([snap])
    events = served(view)
    view.update([snap])
    view.update([make_snapshot(latency=MULTI, step=2)])  # the same curve in a newer snapshot
    assert events == []


def test_figures_follow_svg_export():
    view = LatencyView()
    view.view_config.svg_export = True
    assert view.accuracy.output_backend == view.confidence.output_backend == "svg"
