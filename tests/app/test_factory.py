"""create_app builds a complete, per-session app without a server; presets drive the sidebar."""

from __future__ import annotations

import pytest

pn = pytest.importorskip("panel")


def test_every_view_is_real_and_renders(app):
    from batscope.app.factory import TAB_OF
    from batscope.widgets.base import PlotView

    views = [app.view(name) for name in TAB_OF if name != "export"]
    assert all(isinstance(v, PlotView) for v in views)
    for v in views:
        assert v.__panel__().get_root() is not None  # empty state renders


def test_sessions_get_their_own_objects(app):
    from batscope.app.factory import create_app

    other = create_app()
    try:
        assert other.controller is not app.controller and other.network is not app.network
        assert other.views["raster"] is not app.views["raster"]
    finally:
        other.controller.shutdown()


def test_locked_preset_hides_controls_and_freezes_structure(app):
    app.preset = "lesson-seed"
    assert app.training.task == "convergence"
    assert not app.form.inputs["optimizer"].visible and app.form.inputs["seed"].visible
    assert app.form.inputs["task"].disabled
    assert app.builder.locked and app.builder._add.disabled
    assert "theta" in app.builder.hidden and "init_mean" not in app.builder.hidden
    app.preset = "mnist-multi"
    assert app.network.sizes == [800, 10] and not app.builder.locked
    assert app.form.inputs["n_train"].visible  # image tasks show their data settings
    assert not app.check.visible  # the paper preset is consistent


def test_config_check_message_shows(app):
    app.training.y_true = 50
    assert app.check.visible and "unreachable" in app.check.object


def test_membrane_neurons_input_follows_clicks_and_refuses_bad_text():
    from batscope.app.factory import create_app
    from batscope.widgets.raster import MAX_SELECTED

    app = create_app()
    controls = app.view_controls
    assert controls.neurons.value == "0"
    app.view_config.neurons = [3, 7]  # a click on the raster
    assert controls.neurons.value == "3, 7" and not controls.alert.visible
    controls.neurons.value = "5,1"
    assert app.view_config.neurons == [1, 5]
    for bad in ("a, b", "-1", "", ", ".join(map(str, range(MAX_SELECTED + 1)))):
        controls.neurons.value = bad
        assert app.view_config.neurons == [1, 5]  # nothing lost
        assert controls.alert.visible and "membrane neurons" in controls.alert.object
        assert controls.neurons.value == "1, 5"  # the widget shows the selection in force


def test_both_sweeps_share_the_sessions_cluster_choice_and_budget(app):
    assert app.sweep.cluster is app.cluster and app.grid_sweep.cluster is app.cluster
    assert app.sweep.account is app.account and app.grid_sweep.account is app.account
    app.network.set_layers(app.network.layers + [type(app.network.layers[0])(size=2)])
    assert "network.layers.1.theta" in app.grid_sweep.param.x_field.objects  # follows the builder


def test_shd_without_files_is_offered_with_a_note_and_the_sidebar_says_where(tmp_path, monkeypatch):
    from batscope.app.factory import create_app

    monkeypatch.setenv("BATSCOPE_DATA", str(tmp_path))
    a = create_app()
    try:
        assert a.form.inputs["task"].options["shd (files not found)"] == "shd"
        a.preset = "shd-multi"
        assert a.training.task == "shd" and a.network.sizes == [128, 20]
        shown = a.check.object.replace("\\", "")  # the message is Markdown-escaped
        assert a.check.visible and "shd_train.h5" in shown
        assert str(tmp_path) not in shown  # a participant learns no path of the server's disk
        a.preset = "yin-yang"  # its own splits: no sample count or share to set
        assert not a.check.visible
        assert a.form.inputs["batch_size"].visible and not a.form.inputs["n_train"].visible
    finally:
        a.controller.shutdown()
        a.sweep.shutdown()
