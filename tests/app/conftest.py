"""Fixtures shared by the app tests."""

from __future__ import annotations

import pytest
from batscope.app.presets import apply_preset, load_preset
from batscope.training.controller import TrainingController
from batscope.training.state import NetworkSpec, TrainingConfig, ViewConfig
from batscope.training.trainer import Trainer


@pytest.fixture
def export():
    """An ``ExportView`` on a controller holding the convergence preset (needs Panel)."""
    pytest.importorskip("panel")
    from batscope.widgets.export import ExportView

    net, cfg = NetworkSpec(), TrainingConfig()
    apply_preset(load_preset("convergence"), net, cfg)
    ctrl = TrainingController(net, cfg, ViewConfig(), Trainer)
    yield ExportView(ctrl, ctrl.view)
    ctrl.shutdown()


@pytest.fixture
def app():
    """A fresh app as a session builds it (no server), its workers stopped afterwards."""
    from batscope.app.factory import create_app

    a = create_app()
    yield a
    for ctrl in (a.controller, a.sweep, a.grid_sweep):
        ctrl.shutdown()
