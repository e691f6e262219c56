"""WeightsView: a weight heatmap on a fixed symmetric scale and 28 × 28 receptive fields."""

import numpy as np
import pytest
from batscope.widgets.weights import WeightsView
from bokeh.models import ColorBar, ColumnDataSource, HoverTool


def test_empty_state_renders(empty_snapshot, served):
    view = WeightsView()
    view.update([empty_snapshot])
    served(view)
    assert len(view.matrix_source.data["image"]) == len(view.field_source.data["image"]) == 0
    assert "No weights" in view.info.object
    for fig in (view.matrix, view.field):
        assert len(fig.select(ColorBar)) == 1 and len(fig.select(HoverTool)) == 1


def test_matrix_and_receptive_field(make_snapshot):
    snap = make_snapshot(sizes=(784, 30, 10))
    view = WeightsView()
    view.update([snap])
    w = snap.weights[0]
    data = view.matrix_source.data
    image = data["image"][0]
    assert image.shape == (30, 784) and image.dtype == np.float32
    # Bokeh draws image row 0 at the bottom: post neuron j is row j, at height j
    np.testing.assert_allclose(image[3], w[3], rtol=1e-6)
    assert (data["x"][0], data["y"][0]) == (-0.5, -0.5)
    assert (data["dw"][0], data["dh"][0]) == (784, 30)
    rf = view.field_source.data["image"][0]
    assert rf.shape == (28, 28)
    m = np.abs(w).max()
    for mapper in (view.matrix_mapper, view.field_mapper):
        assert (mapper.low, mapper.high) == (pytest.approx(-m), pytest.approx(m))
        assert mapper.palette[0] != mapper.palette[-1]  # diverging
    (hover,) = view.matrix.select(HoverTool)
    assert [t[0] for t in hover.tooltips] == ["pre i", "post j", "w"]
    # a dense network has no kernels: their figure is not even built (it costs every session)
    assert "kernels" not in vars(view) and len(view._plots.objects) == 2


def test_colour_range_is_fixed_between_frames(make_snapshot):
    snap = make_snapshot(sizes=(16, 8, 4))
    view = WeightsView()
    view.update([snap])
    high = view.matrix_mapper.high
    small = tuple(0.1 * w for w in snap.weights)
    view.update([make_snapshot(sizes=(16, 8, 4), weights=small)])
    assert view.matrix_mapper.high == pytest.approx(high)  # no jump to ±0.1 m
    np.testing.assert_allclose(view.matrix_source.data["image"][0], small[0], rtol=1e-6)
    view.reset()
    assert len(view.matrix_source.data["image"]) == 0 and view.matrix_mapper.high == 1.0
    view.update([make_snapshot(sizes=(16, 8, 4), weights=small)])
    assert view.matrix_mapper.high == pytest.approx(0.1 * high)
    assert view.field_mapper.high == pytest.approx(0.1 * high)


def test_follows_view_config_and_non_square_inputs(make_snapshot):
    snap = make_snapshot(sizes=(784, 30, 10))
    view = WeightsView()
    view.update([snap])
    view.view_config.neurons = [7]
    assert view.neuron.value == 7
    # Bokeh stores image rows bottom-up: the top row of the 28 x 28 field is the last one
    field = view.field_source.data
    np.testing.assert_allclose(field["image"][0], snap.weights[0][7].reshape(28, 28)[::-1])
    assert field["i"][0][-1, 0] == 0 and field["i"][0][0, -1] == 783  # input index on hover
    view.view_config.layer = 2  # 30 inputs: no square, one row
    assert view.layer == 2
    assert view.field_source.data["image"][0].shape == (1, 30)
    assert view.matrix_source.data["image"][0].shape == (10, 30)


def test_nan_weights_are_reported(make_snapshot):
    snap = make_snapshot(sizes=(9, 4, 2))
    w = snap.weights[0].copy()
    w[0, 0] = np.nan
    view = WeightsView()
    view.update([make_snapshot(sizes=(9, 4, 2), weights=(w, snap.weights[1]))])
    assert "1 non-finite weights" in view.info.object
    assert np.isfinite(view.matrix_mapper.high)
    assert np.isnan(view.matrix_source.data["image"][0][0, 0])


def test_the_same_weights_twice_send_nothing(make_snapshot, served):
    snap = make_snapshot(sizes=(16, 8, 4))
    view = WeightsView()
    view.update([snap])
    events = served(view)
    view.update([snap])
    view.update([make_snapshot(sizes=(16, 8, 4), weights=snap.weights, step=2)])
    assert events == []
    view.neuron.value = 3  # a new neuron: only its receptive field travels
    sources = {e.model for e in events if isinstance(e.model, ColumnDataSource)}
    assert sources == {view.field_source}


def test_figures_follow_svg_export():
    view = WeightsView()
    view.view_config.svg_export = True
    assert view.matrix.output_backend == view.field.output_backend == "svg"


def test_the_matrix_follows_training_in_float32(served):
    """Snapshots of a float32 run, one step apart: the second matrix reaches the page (with
    the live weight arrays in the snapshot, the view's source held the very array the next
    snapshot brought, compared it equal to itself and sent nothing: frozen in the browser)."""
    from batscope.app.presets import load_preset
    from batscope.training.trainer import Trainer

    cfg = load_preset("convergence").config
    tr = Trainer({**cfg, "training": {**cfg["training"], "dtype": "float32"}})
    view = WeightsView()
    view.update([tr.snapshot(heavy=True)])
    events = served(view)
    tr.step()
    view.update([tr.snapshot(heavy=True)])
    assert any(getattr(e, "model", None) is view.matrix_source for e in events)
    np.testing.assert_array_equal(view.matrix_source.data["image"][0], tr.network.weights[0])
