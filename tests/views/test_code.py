"""CodeView: the script follows the configuration; the download serves it."""

import panel as pn
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig
from batscope.widgets.code import CodeView


def test_script_follows_config_and_downloads():
    network, training = NetworkSpec(), TrainingConfig()
    view = CodeView(network, training)
    assert isinstance(view.__panel__(), pn.viewable.Viewable)
    view.__panel__().get_root()
    assert view.code.object.startswith("```python") and "Network(" in view.script
    compile(view.script, "train_batscope.py", "exec")
    training.lr = 0.05
    assert "LR = 0.05" in view.script
    network.layers[0].theta = 0.7
    assert "theta=0.7" in view.script
    network.add_layer(0, LayerSpec(size=7))
    network.layers[0].size = 9  # a layer added later is watched too
    assert "Dense(9," in view.script
    assert view._file().read().decode() == view.script
    assert view.download.filename == "train_batscope.py" and not view.download.disabled
    view.update([])
    view.reset()
    assert "Dense(9," in view.script


def test_invalid_config_is_reported():
    view = CodeView(config_provider=lambda: {"network": {"layers": []}, "training": {}})
    assert "cannot be turned into a script" in view.code.object
    assert view.download.disabled


def test_a_burst_of_changes_in_a_served_session_renders_once(monkeypatch):
    """A preset sets many fields, then the layers: served, the script is highlighted once, on
    the next tick (each render costs the server 10-30 ms)."""
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    network, training = NetworkSpec(), TrainingConfig()
    view = CodeView(network, training)
    renders, ticks = [], []
    view.code.param.watch(renders.append, "object")
    doc = Document()
    monkeypatch.setattr(doc, "add_next_tick_callback", ticks.append)
    monkeypatch.setattr(Document, "session_context", property(lambda self: object()))  # served
    with set_curdoc(doc):
        training.lr = 0.05
        training.epochs = 7
        network.add_layer(0, LayerSpec(size=7))
        assert renders == [] and len(ticks) == 1  # one re-render scheduled for them all
        ticks[0]()
    assert len(renders) == 1 and "LR = 0.05" in view.script and "Dense(7," in view.script
    view.refresh()  # nothing changed since: the script is not highlighted again
    assert len(renders) == 1
