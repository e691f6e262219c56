"""WeightsView: a weight heatmap on a fixed symmetric scale and 28 × 28 receptive fields."""

import holoviews as hv
import numpy as np
import pytest
from batscope.widgets.weights import WeightsView


def test_empty_state_renders(render, empty_snapshot):
    view = WeightsView()
    view.update([empty_snapshot])
    render(view.matrix)
    render(view.field)
    assert isinstance(view.matrix[()], hv.Image)
    assert "No weights" in view.info.object
    assert view.__panel__().get_root() is not None


def test_matrix_and_receptive_field(render, make_snapshot):
    snap = make_snapshot(sizes=(784, 30, 10))
    view = WeightsView()
    matrix, field = render(view.matrix), render(view.field)
    view.update([snap])
    w = snap.weights[0]
    image = matrix.handles["source"].data["image"][0]
    assert image.shape == (30, 784) and image.dtype == np.float32
    np.testing.assert_allclose(
        view.matrix[()].select(**{"post j": 3}).dimension_values("w"), w[3], rtol=1e-6
    )
    rf = field.handles["source"].data["image"][0]
    assert rf.shape == (28, 28)
    m = np.abs(w).max()
    mapper = matrix.handles["color_mapper"]
    assert (mapper.low, mapper.high) == (pytest.approx(-m), pytest.approx(m))
    assert mapper.palette[0] != mapper.palette[-1]  # diverging


def test_colour_range_is_fixed_between_frames(render, make_snapshot):
    snap = make_snapshot(sizes=(16, 8, 4))
    view = WeightsView()
    matrix = render(view.matrix)
    view.update([snap])
    high = matrix.handles["color_mapper"].high
    small = tuple(0.1 * w for w in snap.weights)
    view.update([make_snapshot(sizes=(16, 8, 4), weights=small)])
    assert matrix.handles["color_mapper"].high == pytest.approx(high)  # no jump to ±0.1 m
    view.reset()
    view.update([make_snapshot(sizes=(16, 8, 4), weights=small)])
    assert matrix.handles["color_mapper"].high == pytest.approx(0.1 * high)


def test_follows_view_config_and_non_square_inputs(render, make_snapshot):
    snap = make_snapshot(sizes=(784, 30, 10))
    view = WeightsView()
    field = render(view.field)
    view.update([snap])
    view.view_config.neurons = [7]
    assert view.neuron.value == 7
    # Bokeh stores image rows bottom-up: the top row of the 28 x 28 field is the last one
    np.testing.assert_allclose(
        field.handles["source"].data["image"][0],
        snap.weights[0][7].reshape(28, 28)[::-1],
        rtol=1e-6,
    )
    view.view_config.layer = 2  # 30 inputs: no square, one row
    assert view.layer == 2
    assert field.handles["source"].data["image"][0].shape == (1, 30)


def test_nan_weights_are_reported(make_snapshot):
    snap = make_snapshot(sizes=(9, 4, 2))
    w = snap.weights[0].copy()
    w[0, 0] = np.nan
    view = WeightsView()
    view.update([make_snapshot(sizes=(9, 4, 2), weights=(w, snap.weights[1]))])
    assert "1 non-finite weights" in view.info.object
    assert np.isfinite(view.matrix_pipe.data["m"])
