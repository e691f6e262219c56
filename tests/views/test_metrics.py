"""MetricsView: every row reaches its split's buffer; each plot redraws once per update."""

import numpy as np
from batscope.engine.telemetry import MetricRow, Snapshot
from batscope.widgets.metrics import SPLITS, MetricsView


def _snap(rows):
    return Snapshot(step=rows[-1].step, epoch=0, batch=0, n_batches=1, epochs=1, rows=tuple(rows))


def test_rows_of_every_split_reach_the_plots_in_one_redraw(render):
    view = MetricsView()
    loss, acc = render(view.loss), render(view.accuracy)
    redraws = []

    def redraw(**_):  # one subscriber of every buffer, as each plot is
        redraws.append(1)

    for buffer in view.buffers.values():
        buffer.add_subscriber(redraw)
    train = [MetricRow(i, 0, "train", 1.0 / (i + 1), 0.1 * i) for i in range(5)]
    view.update([_snap(train[:3]), _snap([*train[3:], MetricRow(4, 1, "val", 0.5, 0.6)])])
    assert len(redraws) == 1  # one trigger for all the splits that got rows
    assert list(view.buffers["train"].data["step"]) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(view.buffers["train"].data["accuracy"], [0, 10, 20, 30, 40])
    assert len(view.buffers["val"].data) == 1 and len(view.buffers["test"].data) == 0
    view.update([_snap([MetricRow(5, 1, "train", 0.1, 0.9), MetricRow(5, 1, "test", 0.2, 0.8)])])
    by_label = {s.current_frame.label: s.handles["source"].data for s in loss.subplots.values()}
    assert list(by_label["train"]["step"]) == [0, 1, 2, 3, 4, 5]
    assert list(by_label["test"]["loss"]) == [0.2]
    acc_train = next(s for s in acc.subplots.values() if s.current_frame.label == "train")
    assert acc_train.handles["source"].data["accuracy"][-1] == 90.0
    view.reset()
    assert all(len(view.buffers[s].data) == 0 for s in SPLITS)
