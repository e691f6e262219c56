"""ConvergenceView: NaN grids that fill from SweepController.poll(), fixed clim, tap drill-down."""

import time

import numpy as np
import panel as pn
import pytest
from batscope.training.state import SweepConfig
from batscope.training.sweep import SweepCells, SweepController
from batscope.widgets.convergence import ConvergenceView
from bokeh.document import Document
from bokeh.events import Tap
from bokeh.models import HoverTool


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


def image(view, variant):
    return view.sources[variant].data["image"][0]


def clim(view, variant):
    return view.mappers[variant].low, view.mappers[variant].high


def test_empty_state_renders_grey_grid():
    view = ConvergenceView(SweepController(tiny()))
    assert isinstance(view.__panel__(), pn.viewable.Viewable)
    doc = Document()
    doc.add_root(view.__panel__().get_root(doc))
    doc.to_json()  # serializes as a served page would
    for v in ("single", "multi"):
        img = image(view, v)
        assert img.shape == (2, 2) and np.isnan(img).all()
        assert clim(view, v) == (50, 100)
        assert view.mappers[v].nan_color == "lightgrey"
        src = view.sources[v].data
        assert src["x"][0] == pytest.approx(-0.3) and src["dw"][0] == pytest.approx(1.2)
        fig = view.maps[v]
        assert (fig.x_range.start, fig.x_range.end) == (pytest.approx(-0.3), pytest.approx(0.9))
        assert any(isinstance(t, HoverTool) for t in fig.tools)


def test_update_fills_cells_and_ignores_other_items(snapshot):
    view = ConvergenceView(SweepController(tiny()))
    view.update([snapshot, cells(idx=((1, 0),), acc=(75.0,))])  # μ index 1, σ index 0
    img = image(view, "multi")  # row 0 (σ = 0) at the bottom, column 1 at μ = 0.6
    assert img[0, 1] == 75.0 and np.isnan(img).sum() == 3
    assert view.sources["multi"].data["runs"][0][0, 1] == 3
    view.update([cells(idx=((0, 0), (1, 1)), acc=(50.0, 100.0))])
    img = image(view, "multi")
    assert img[0, 0] == 50 and img[1, 1] == 100 and img[0, 1] == 75
    assert np.isnan(image(view, "single")).all()  # the other variant is untouched
    # a new sweep starts from grey, strict mode has the (0, 100) scale
    view.update([cells(sweep_id=2, predict="strict", idx=((1, 1),), acc=(20.0,))])
    img = image(view, "multi")
    assert np.isnan(img).sum() == 3 and img[1, 1] == 20
    assert clim(view, "multi") == (0, 100)


def test_every_batch_of_cells_is_sent_to_the_page(served):
    """The grid fills in place: each batch of cells must still reach the browser (the sources
    held the grid itself, so a later batch compared equal to what was sent and was dropped:
    the maps stopped after their first chunk)."""
    view = ConvergenceView(SweepController(tiny()))
    view.update([cells(idx=((0, 0),), acc=(60.0,))])
    events = served(view)
    view.update([cells(idx=((1, 1),), acc=(90.0,))])
    sent = [e for e in events if getattr(e, "model", None) is view.sources["multi"]]
    assert len(sent) == 1
    img = sent[0].model.data["image"][0]
    assert img[1, 1] == 90.0 and img[0, 0] == 60.0
    view.update([cells(idx=((0, 1),), acc=(70.0,))])
    assert len([e for e in events if getattr(e, "model", None) is view.sources["multi"]]) == 2


def test_live_sweep_fills_progressively_and_reports_progress():
    ctrl = SweepController(tiny(), chunk_cells=1)
    view = ConvergenceView(ctrl)
    ctrl.param.trigger("run")
    nan_counts, t0 = [], time.perf_counter()
    while ctrl.status not in ("finished", "error") and time.perf_counter() - t0 < 60:
        if ctrl.poll():  # the view listens to the controller: polling alone feeds it
            nan_counts.append(int(np.isnan(image(view, "multi")).sum()))
        time.sleep(0.01)
    ctrl.poll()
    assert ctrl.status == "finished", ctrl.message
    assert nan_counts == sorted(nan_counts, reverse=True) and nan_counts[-1] == 0
    for v in ("single", "multi"):
        img = image(view, v)
        assert not np.isnan(img).any() and ((img >= 0) & (img <= 100)).all()
    assert view.progress.value == view.progress.max == 8
    assert "finished" in view.status.object and "8/8" in view.status.object


def test_tap_runs_a_drill_down():
    ctrl = SweepController(tiny())
    view = ConvergenceView(ctrl)
    view.repeat = 1
    drilled = []
    view.param.watch(drilled.append, "drilled")
    # what a click on the map sends: Bokeh's Tap event, at data coordinates
    view.maps["single"]._trigger_event(Tap(view.maps["single"], x=0.55, y=0.05))
    assert view.drill == ("single", 1, 0, 1)  # nearest cell: μ = 0.6, σ = 0
    assert len(drilled) == 1
    trace = view.trace
    assert trace.mean == 0.6 and trace.std == 0.0 and trace.repeat == 1
    assert "μ = 0.6" in view.drill_title.object
    curve = view.curve_source.data
    assert len(curve["epoch"]) == 10 and np.allclose(curve["accuracy"], 100 * trace.accuracy)
    assert view.epoch == 9
    raster = view.raster_source.data
    assert list(raster["kind"]).count("input") == 8
    assert len(raster["t"]) == 8 + np.isfinite(trace.times[9]).sum()
    view.epoch = 0
    w = view.weights_source.data["image"][0]  # sent as float32
    np.testing.assert_array_equal(w, trace.weights[0].astype(np.float32))
    m = view.weights_mapper
    assert m.low == -m.high == -np.abs(trace.weights).max()  # symmetric, fixed per run
    view.reset()
    assert view.trace is None and "tap a cell" in view.drill_title.object
    assert len(view.raster_source.data["t"]) == 0 and len(view.curve_source.data["epoch"]) == 0


def test_new_sweep_greys_the_grid_at_once():
    ctrl = SweepController(tiny(predict="strict"))
    view = ConvergenceView(ctrl)
    view.update([cells(sweep_id=0, idx=((0, 0),), acc=(90.0,))])
    assert image(view, "multi")[0, 0] == 90
    ctrl.variants = []
    ctrl.param.trigger("run")  # nothing to run: said, not raised
    assert ctrl.status == "idle" and "variants" in ctrl.message
    ctrl.variants = ["multi"]
    ctrl.param.trigger("run")
    assert np.isnan(image(view, "multi")).all()  # cleared before the first cell arrives
    assert clim(view, "multi") == (0, 100)
    assert ctrl.shutdown()


def test_hover_and_svg_export():
    from batscope.training.state import ViewConfig

    view = ConvergenceView(SweepController(tiny()), view_config=ViewConfig(svg_export=True))
    fig = view.maps["single"]
    (hover,) = [t for t in fig.tools if isinstance(t, HoverTool)]
    assert [label for label, _ in hover.tooltips] == ["μ", "σ", "best accuracy (%)", "runs done"]
    src = view.sources["single"].data
    assert src["cell_mu"][0][0].tolist() == [0.0, 0.6]  # cell centres, not the cursor
    assert src["cell_sigma"][0][:, 0].tolist() == [0.0, 0.6]
    assert fig.output_backend == "svg"
    assert any(t.__class__.__name__ == "SaveTool" for t in fig.tools)
