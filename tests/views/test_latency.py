"""LatencyView: accuracy and confidence against decision time, T_enc marked, several curves."""

import holoviews as hv
import numpy as np
import pytest
from batscope.engine.telemetry import LatencyCurve
from batscope.widgets.latency import LatencyView

T = np.linspace(0, 0.2, 5)
MULTI = LatencyCurve(T, np.array([0.0, 0.5, 0.98, 0.98, 0.98]), 0.1, "multi-spike")
SINGLE = LatencyCurve(T, np.array([0.0, 0.0, 0.2, 0.9, 0.96]), 0.1, "single-spike")


def _curves(plot):
    lines = list(plot.subplots.values())[0]
    return {k[0]: p for k, p in lines.subplots.items() if p.handles["glyph_renderer"].visible}


def test_empty_state_renders(render, empty_snapshot):
    view = LatencyView()
    view.update([empty_snapshot])
    render(view.accuracy)
    render(view.confidence)
    assert isinstance(view.accuracy[()], hv.Overlay)
    assert "No latency curve" in view.info.object
    assert view.__panel__().get_root() is not None


def test_curve_values_and_t_enc(render, make_snapshot):
    view = LatencyView()
    acc, conf = render(view.accuracy), render(view.confidence)
    view.update([make_snapshot(latency=MULTI)])
    data = _curves(acc)["multi-spike"].handles["source"].data
    np.testing.assert_allclose(data["accuracy"], 100 * MULTI.accuracy)
    cdata = _curves(conf)["multi-spike"].handles["source"].data
    np.testing.assert_allclose(cdata["confidence"], [0, 100 * 0.5 / 0.98, 100, 100, 100])
    vline = list(acc.subplots.values())[1]
    assert vline.handles["glyph"].location == pytest.approx(0.1)
    assert "100 % confidence at 100 ms" in view.info.object


def test_several_curves_and_reference(render, make_snapshot):
    view = LatencyView()
    acc = render(view.accuracy)
    view.update([make_snapshot(latency=MULTI, extra={"latency_curves": [SINGLE]})])
    assert set(_curves(acc)) == {"multi-spike", "single-spike"}
    view.set_reference(SINGLE, label="stored single-spike")
    view.update([make_snapshot(latency=MULTI)])
    assert set(_curves(acc)) == {"multi-spike", "stored single-spike"}
    assert "stored single-spike" in view.info.object
    view.reset()  # references survive a reset of the run
    assert set(_curves(acc)) == {"stored single-spike"}
    view.clear_references()
    assert "No latency curve" in view.info.object
    with pytest.raises(TypeError, match="curve"):
        view.set_reference("not a curve")


def test_zero_final_accuracy_gives_nan_confidence(render, make_snapshot):
    flat = LatencyCurve(T, np.zeros(5), 0.1, "dead")
    view = LatencyView()
    conf = render(view.confidence)
    view.update([make_snapshot(latency=flat)])
    assert np.isnan(_curves(conf)["dead"].handles["source"].data["confidence"]).all()
    assert "never" in view.info.object
