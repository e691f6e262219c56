"""GridSweepView: the accuracy heatmap on categorical axes fills in as runs end."""

import numpy as np
from batscope.training.grid_sweep import GridRun, GridSweepController
from batscope.training.state import NetworkSpec, TrainingConfig
from batscope.widgets.grid_sweep import GridSweepView
from bokeh.document import Document


def _view(**settings):
    ctrl = GridSweepController(NetworkSpec(), TrainingConfig(), **settings)
    return GridSweepView(ctrl), ctrl


def _run(ctrl, cell, accuracy):
    record = {"status": "trained", "final_test_accuracy": accuracy, "seconds": 1.0}
    return GridRun(ctrl.sweep_id, cell.key, cell.values, cell.seed, record)


def test_empty_state_is_one_grey_cell_and_serializes():
    view, _ = _view()
    doc = Document()
    doc.add_root(view.__panel__().get_root(doc))
    doc.to_json()  # as a served page would
    data = view.cells_source.data
    assert data["x"] == ["no sweep yet"] and np.isnan(data["accuracy"]).all()
    assert view.mapper.nan_color == "lightgrey" and (view.mapper.low, view.mapper.high) == (0, 100)


def test_runs_fill_their_cells_with_the_mean_over_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("BATSCOPE_SWEEP_DIR", str(tmp_path))
    view, ctrl = _view(x_values="0.05, 0.1", seeds="0-1")
    ctrl.plan = plan = ctrl.make_plan()  # as start() records it
    view.reset()
    fig, data = view.heatmap, view.cells_source.data
    assert list(fig.x_range.factors) == ["0.05", "0.1"]
    assert list(fig.y_range.factors) == ["seed 0", "seed 1"]
    assert fig.xaxis.axis_label == "training.lr" and np.isnan(data["accuracy"]).all()
    first = next(c for c in plan.cells if c.values[0][1] == 0.1 and c.seed == 1)
    view.update([_run(ctrl, first, 0.75), "not a run"])
    data = view.cells_source.data
    filled = [(x, y, a) for x, y, a in zip(data["x"], data["y"], data["accuracy"], strict=True)]
    assert [(x, y) for x, y, a in filled if np.isfinite(a)] == [("0.1", "seed 1")]
    assert [a for _, _, a in filled if np.isfinite(a)] == [75.0]
    assert len(view.table.object) == 1 and view.table.object["accuracy %"][0] == 75.0
    old = GridRun(ctrl.sweep_id - 1, first.key, first.values, first.seed, {"status": "trained"})
    view.update([old])  # another sweep's run: ignored
    assert len(view.table.object) == 1


def test_a_second_axis_averages_over_seeds(tmp_path, monkeypatch):
    monkeypatch.setenv("BATSCOPE_SWEEP_DIR", str(tmp_path))
    view, ctrl = _view(
        x_values="0.05, 0.1", y_field="training.epochs", y_values="10, 20", seeds="0-1"
    )
    ctrl.plan = plan = ctrl.make_plan()
    view.reset()
    cells = [c for c in plan.cells if c.values[0][1] == 0.05 and c.values[1][1] == 20]
    view.update([_run(ctrl, c, acc) for c, acc in zip(cells, (0.5, 0.7), strict=True)])
    data = view.cells_source.data
    i = next(k for k in range(len(data["x"])) if (data["x"][k], data["y"][k]) == ("0.05", "20"))
    assert data["accuracy"][i] == 60.0 and data["runs"][i] == 2
    assert view.heatmap.title.text == "Final accuracy (mean over seeds)"
    assert list(view.heatmap.y_range.factors) == ["10", "20"]
