"""ConvergenceView: NaN grids that fill from SweepController.poll(), fixed clim, tap drill-down."""

import time

import numpy as np
import panel as pn
import pytest
from batscope.training.state import SweepConfig
from batscope.training.sweep import SweepCells, SweepController
from batscope.widgets.convergence import ConvergenceView


def tiny(**kw):
    return SweepConfig(mu_max=0.6, sigma_max=0.6, step=0.6, repeats=3, epochs=10, **kw)


def cells(sweep_id=1, variant="multi", predict="reference", idx=((0, 1),), acc=(75.0,)):
    mu, sigma = np.array([0.0, 0.6]), np.array([0.0, 0.6])
    idx = np.asarray(idx)
    return SweepCells(
        sweep_id,
        variant,
        mu,
        sigma,
        idx[:, 0],
        idx[:, 1],
        np.asarray(acc),
        np.full(len(idx), 3),
        predict,
    )


def image(render, view, variant):
    plot = render(view.maps[variant])
    return plot, plot.handles["source"].data["image"][0]


def test_empty_state_renders_grey_grid(render):
    view = ConvergenceView(SweepController(tiny()))
    assert isinstance(view.__panel__(), pn.viewable.Viewable)
    view.__panel__().get_root()
    for v in ("single", "multi"):
        plot, img = image(render, view, v)
        assert img.shape == (2, 2) and np.isnan(img).all()
        mapper = plot.handles["color_mapper"]
        assert (mapper.low, mapper.high) == (50, 100)
        assert plot.state.tools  # hover/tap/save present
        src = plot.handles["source"].data
        assert src["x"][0] == pytest.approx(-0.3) and src["dw"][0] == pytest.approx(1.2)


def test_update_fills_cells_and_ignores_other_items(render, snapshot):
    view = ConvergenceView(SweepController(tiny()))
    plot, _ = image(render, view, "multi")
    view.update([snapshot, cells(idx=((1, 0),), acc=(75.0,))])  # μ index 1, σ index 0
    img = plot.handles["source"].data["image"][0]
    assert img[0, 1] == 75.0 and np.isnan(img).sum() == 3
    assert plot.handles["source"].data["runs"][0][0, 1] == 3
    view.update([cells(idx=((0, 0), (1, 1)), acc=(50.0, 100.0))])
    img = plot.handles["source"].data["image"][0]
    assert img[0, 0] == 50 and img[1, 1] == 100 and img[0, 1] == 75
    _, single = image(render, view, "single")
    assert np.isnan(single).all()  # the other variant is untouched
    # a new sweep starts from grey, strict mode has the (0, 100) scale
    view.update([cells(sweep_id=2, predict="strict", idx=((1, 1),), acc=(20.0,))])
    img = plot.handles["source"].data["image"][0]
    assert np.isnan(img).sum() == 3 and img[1, 1] == 20
    assert (plot.handles["color_mapper"].low, plot.handles["color_mapper"].high) == (0, 100)


def test_live_sweep_fills_progressively_and_reports_progress(render):
    ctrl = SweepController(tiny(), chunk_cells=1)
    view = ConvergenceView(ctrl)
    plot, _ = image(render, view, "multi")
    ctrl.param.trigger("run")
    nan_counts, t0 = [], time.perf_counter()
    while ctrl.status not in ("finished", "error") and time.perf_counter() - t0 < 60:
        if ctrl.poll():  # the view listens to the controller: polling alone feeds it
            nan_counts.append(int(np.isnan(plot.handles["source"].data["image"][0]).sum()))
        time.sleep(0.01)
    ctrl.poll()
    assert ctrl.status == "finished", ctrl.message
    assert nan_counts == sorted(nan_counts, reverse=True) and nan_counts[-1] == 0
    for v in ("single", "multi"):
        _, img = image(render, view, v)
        assert not np.isnan(img).any() and ((img >= 0) & (img <= 100)).all()
    assert view.progress.value == view.progress.max == 8
    assert "finished" in view.status.object and "8/8" in view.status.object


def test_tap_runs_a_drill_down(render):
    ctrl = SweepController(tiny())
    view = ConvergenceView(ctrl)
    view.repeat = 1
    view.taps["single"].event(x=0.55, y=0.05)  # nearest cell: μ = 0.6, σ = 0
    assert view.drill == ("single", 1, 0, 1)
    trace = view.trace
    assert trace.mean == 0.6 and trace.std == 0.0 and trace.repeat == 1
    assert "μ = 0.6" in view.drill_title.object
    epochs, acc = view._curve_pipe.data
    assert len(epochs) == 10 and np.allclose(acc, 100 * trace.accuracy)
    assert view.epoch == 9
    raster = view._raster_pipe.data
    assert (raster["kind"] == "input").sum() == 8
    assert render(view.raster).handles["source"].data["t"].size == raster["t"].size
    view.epoch = 0
    assert np.array_equal(view._weights_pipe.data["w"], trace.weights[0])
    w_plot = render(view.weights)
    m = w_plot.handles["color_mapper"]
    assert m.low == -m.high  # symmetric, fixed per run
    view.reset()
    assert view.trace is None and "tap a cell" in view.drill_title.object


def test_new_sweep_greys_the_grid_at_once(render):
    ctrl = SweepController(tiny(predict="strict"))
    view = ConvergenceView(ctrl)
    view.update([cells(sweep_id=0, idx=((0, 0),), acc=(90.0,))])
    plot, img = image(render, view, "multi")
    assert img[0, 0] == 90
    ctrl.variants = []
    ctrl.param.trigger("run")  # nothing to run: said, not raised
    assert ctrl.status == "idle" and "variants" in ctrl.message
    ctrl.variants = ["multi"]
    ctrl.param.trigger("run")
    img = plot.handles["source"].data["image"][0]
    assert np.isnan(img).all()  # cleared before the first cell arrives
    assert (plot.handles["color_mapper"].low, plot.handles["color_mapper"].high) == (0, 100)
    assert ctrl.shutdown()


def test_hover_and_svg_export(render):
    from batscope.training.state import ViewConfig

    view = ConvergenceView(SweepController(tiny()), view_config=ViewConfig(svg_export=True))
    plot, _ = image(render, view, "single")
    labels = [label for label, _ in plot.handles["hover"].tooltips]
    assert labels == ["μ", "σ", "best accuracy (%)", "runs done"]
    src = plot.handles["source"].data
    assert src["cell_mu"][0][0].tolist() == [0.0, 0.6]  # cell centres, not the cursor
    assert plot.state.output_backend == "svg"
    assert any(t.__class__.__name__ == "SaveTool" for t in plot.state.tools)
