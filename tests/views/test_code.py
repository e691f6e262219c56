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
