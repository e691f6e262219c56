"""The prediction scatter: the trainer's map of Yin-Yang test points and the view that draws it."""

from __future__ import annotations

import numpy as np
import pytest
from batscope.app.presets import load_preset
from batscope.datasets.yinyang import CLASS_NAMES, encode_yinyang, load_yinyang
from batscope.engine.backend import to_numpy
from batscope.training.trainer import Trainer
from batscope.widgets.predictions import EMPTY_TEXT, WRONG, PredictionMapView

STEPS = 300


@pytest.fixture(scope="module")
def trained():
    """A Yin-Yang trainer (the app's preset) after 300 steps, and its heavy snapshot (its
    outputs first all fire S times, a tie read as class 0; they separate within ~300 steps)."""
    config = load_preset("yin-yang").config
    trainer = Trainer(config)
    for _ in range(STEPS):
        trainer.step()
    return trainer, trainer.snapshot(heavy=True)


def test_map_holds_the_networks_predictions_at_the_test_points(trained):
    trainer, snap = trained
    pm = snap.extra["prediction_map"]
    features, labels = load_yinyang("test")
    assert pm.step == STEPS and pm.class_names == CLASS_NAMES
    np.testing.assert_array_equal(pm.xy, features[:, :2])
    np.testing.assert_array_equal(pm.labels, labels)
    out = trainer.network.forward(encode_yinyang(features), trainer.t_max)[-1]
    expected = to_numpy(trainer.loss.predict(out, trainer.predict_mode))
    np.testing.assert_array_equal(pm.predictions, expected)
    assert len(np.unique(pm.predictions)) > 1  # a map worth drawing: not one class everywhere


def test_light_snapshots_and_other_tasks_carry_no_map(trained):
    trainer, _ = trained
    assert "prediction_map" not in trainer.snapshot(heavy=False).extra
    toy = Trainer(load_preset("convergence").config)
    assert "prediction_map" not in toy.snapshot(heavy=True).extra


def test_view_draws_the_map_and_resets(trained):
    _, snap = trained
    pm = snap.extra["prediction_map"]
    view = PredictionMapView()
    assert view.info.object == EMPTY_TEXT and not view.pane.visible and not view.fig.visible
    view.update([snap])
    data = view.source.data
    np.testing.assert_array_equal(data["x"], pm.xy[:, 0])
    np.testing.assert_array_equal(data["y"], pm.xy[:, 1])
    assert list(data["prediction"]) == [CLASS_NAMES[p] for p in pm.predictions]
    assert list(data["label"]) == [CLASS_NAMES[c] for c in pm.labels]
    wrong = pm.predictions != pm.labels
    assert list(data["outline"] == WRONG) == list(wrong)
    right = 100 * (1 - wrong.mean())
    assert view.pane.visible and view.fig.visible and f"{right:.1f} %" in view.info.object
    view.reset()
    assert len(view.source.data["x"]) == 0 and view.info.object == EMPTY_TEXT
    assert not view.fig.visible
