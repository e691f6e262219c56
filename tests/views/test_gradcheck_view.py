"""GradCheckView: exact vs finite-difference table, scatter and honest labels."""

import numpy as np
import panel as pn
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig, run_config
from batscope.training.trainer import build_network
from batscope.widgets.gradcheck import GradCheckView
from bokeh.document import Document


def _session(loss):
    training = TrainingConfig(task="xor", loss=loss)
    spec = NetworkSpec(
        layers=[
            LayerSpec(
                size=5, tau_s=1.0, theta=0.3, n_max=10, init="normal", init_mean=1.0, init_std=0.5
            ),
            LayerSpec(
                size=2, tau_s=1.0, theta=1.0, n_max=10, init="normal", init_mean=1.0, init_std=0.5
            ),
        ]
    )
    net = build_network(run_config(spec, training), 3)
    return net, training


def test_empty_state_renders():
    view = GradCheckView()
    assert isinstance(view.__panel__(), pn.viewable.Viewable)
    doc = Document()
    doc.add_root(view.__panel__().get_root(doc))
    doc.to_json()  # serializes as a served page would
    assert all(len(src.data["exact"]) == 0 for src in view.point_sources.values())
    assert view.result is None and "Run gradient check" in view.summary.object
    view.update([])  # nothing streams


def test_exact_loss_agrees_with_finite_differences():
    net, training = _session("ttfs_ce")
    before = [w.copy() for w in net.weights]
    view = GradCheckView(
        network_provider=lambda: net, training_provider=training.to_dict, n_samples=4
    )
    view.param.trigger("check")
    res = view.result
    assert res is not None and res.function == "loss" and res.passed
    assert res.max_scaled_error <= 1e-5 and len(res.compared) >= 4
    assert view.summary.object.startswith("**Agree**")
    assert "surrogate" not in view.table.object.columns
    assert len(view.table.object) == len(res.checks)
    pts = view.point_sources["agrees"].data  # every compared weight agrees
    assert len(pts["exact"]) == len(res.compared)
    assert len(view.point_sources["differs"].data["exact"]) == 0
    assert np.allclose(pts["exact"], pts["fd"], rtol=1e-5, atol=1e-8)
    diagonal = view.diagonal_source.data  # spans every point
    assert diagonal["x"] == diagonal["y"] and diagonal["x"][0] <= np.min(pts["exact"])
    assert diagonal["x"][1] >= np.max(pts["exact"])
    assert all(np.array_equal(a, b) for a, b in zip(before, net.weights, strict=True))
    view.reset()
    assert view.result is None and len(view.table.object) == 0
    assert len(view.point_sources["agrees"].data["exact"]) == 0


def test_spike_count_loss_is_labelled_as_surrogate():
    net, training = _session("spike_count")
    view = GradCheckView(network_provider=lambda: net, training_provider=training.to_dict)
    res = view.run_check()
    assert res.function == "linear probe" and not res.loss_exact
    assert "surrogate" in view.summary.object and "probe" in view.summary.object
    assert "surrogate" in view.table.object.columns


def test_default_network_and_bad_session():
    view = GradCheckView()  # no providers: the default 4 → 2 convergence network
    res = view.run_check()
    assert res is not None and any(c.exact != 0 for c in res.compared)
    net, _ = _session("ttfs_ce")  # 3 inputs, but the task below has 4
    bad = GradCheckView(
        network_provider=lambda: net, training_provider=TrainingConfig(task="convergence").to_dict
    )
    assert bad.run_check() is None
    assert "Cannot run the check" in bad.summary.object


def test_linear_probe_can_be_chosen():
    net, training = _session("ttfs_ce")
    view = GradCheckView(
        network_provider=lambda: net, training_provider=training.to_dict, function="linear probe"
    )
    res = view.run_check()
    assert res.function == "linear probe" and res.passed
    assert "linear probe" in view.summary.object and "surrogate" not in view.summary.object
