"""The Code & export tab's NIR download: a valid ``.nir`` file of the current (trained) network
that re-imports to identical spikes; a network NIR cannot hold is refused with the reason."""

from __future__ import annotations

import numpy as np
import pytest
from batscope.datasets.toy import toy_task
from batscope.engine.network import Network
from batscope.engine.nir import NIRExportError

pytest.importorskip("panel")
nir = pytest.importorskip("nir")


def _spikes(net, inp, t_max):
    return [o.numpy() for o in net.forward(inp, t_max)]


def test_nir_download_reimports_to_identical_spikes(export, tmp_path):
    ctrl = export.controller
    rng = np.random.default_rng(3)
    ctrl.load_weights([rng.normal(1.0, 0.6, (2, 4))])  # weights other than the seed's init
    assert not export.nir.disabled and not export.nir_note.visible
    data = export.nir_file().getvalue()
    path = tmp_path / "download.nir"
    path.write_bytes(data)
    graph = nir.read(path)  # nir's own reader accepts the file
    assert isinstance(graph.nodes["cubalif0"], nir.CubaLIF)
    net = ctrl.current_network()
    np.testing.assert_array_equal(graph.nodes["linear0"].weight, net.weights[0])
    back = Network.from_nir(graph)
    inp, t_max = toy_task("convergence").inputs, ctrl.training.t_max
    before, after = _spikes(net, inp, t_max), _spikes(back, inp, t_max)
    assert sum(int(o.counts.sum()) for o in before) > 0  # the check compares real spikes
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a.counts, b.counts)
        np.testing.assert_array_equal(a.times, b.times)


def test_reset_other_than_theta_disables_the_download_and_says_why(export):
    layer = export.controller.network.layers[0]
    layer.reset = layer.theta / 2
    assert export.nir.disabled and export.nir_note.visible
    assert "NIR export refused" in export.nir_note.object
    assert "differs from theta" in export.nir_note.object
    with pytest.raises(NIRExportError, match="differs from theta"):
        export.nir_file()
    assert export.message.alert_type == "danger" and "NIR export refused" in export.message.object
    layer.reset = None  # empty = θ: exportable again
    assert not export.nir.disabled and not export.nir_note.visible


def test_refusal_message_is_escaped(export, monkeypatch):
    import batscope.widgets.export as view

    monkeypatch.setattr(view, "export_refusal", lambda net: "<img src=x onerror=alert(1)>")
    export.refresh_nir()
    assert export.nir.disabled
    assert "<img" not in export.nir_note.object and "&lt;img" in export.nir_note.object
