"""PatternEditorView: a point-draw edit reruns the network on the edited pattern."""

import numpy as np
import panel as pn
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig, run_config
from batscope.training.trainer import build_network
from batscope.widgets.editor import PatternEditorView
from bokeh.document import Document


def test_default_network_renders_task_pattern():
    view = PatternEditorView()
    assert isinstance(view.__panel__(), pn.viewable.Viewable)
    doc = Document()
    doc.add_root(view.__panel__().get_root(doc))
    doc.to_json()  # serializes as a served page would
    src = view.points_source.data
    assert sorted(zip(src["neuron"], src["t"], strict=True)) == [
        (0, 0),
        (1, 0),
        (2, 1),
        (3, 2),
    ]  # Fig. 3 p0
    assert view.network.n_inputs == 4 and view.result[-1].n_spikes > 0
    assert len(view.raster_source.data["t"]) == view.result[-1].n_spikes
    assert view.raster_fig.yaxis[0].ticker.min_interval == 1  # rows are neurons
    assert len(view.trace_source.data["ys"]) == 2 and view.theta.location == 1.0
    assert view.points_fig.toolbar.active_drag is view.draw  # a drag moves a spike
    assert "Prediction" in view.info.object


def test_point_draw_edit_changes_forward_result():
    view = PatternEditorView()
    before = view.result[-1].times.copy()
    counts_before = view.result[-1].counts.copy()
    # what the point-draw tool sends after the user drags input 3 from 2 s to 0.5 s and adds
    # a spike
    view.points_source.data = {"t": [0.0, 0.0, 1.0, 0.5, 3.0], "neuron": [0, 1, 2, 3.2, 1]}
    assert view.pattern_neuron.tolist() == [0, 1, 2, 3, 1]  # snapped to input rows
    after = view.result[-1]
    assert not (np.array_equal(after.times, before) and np.array_equal(after.counts, counts_before))
    assert len(view.raster_source.data["t"]) == after.n_spikes
    assert len(view.trace_source.data["ys"]) == 2
    assert "5 input spikes" in view.info.object
    edits = []
    view.param.watch(edits.append, "edited")
    view.points_source.data = {"t": [], "neuron": []}  # everything deleted
    assert view.result[-1].n_spikes == 0 and "0 input spikes" in view.info.object
    assert len(edits) == 1  # told after the output was recomputed (a lesson's goal reads it)
    view.param.trigger("load")  # drawn by the view: not taken for an edit of the user's
    assert view.pattern_t.size == 4 and len(view.points_source.data["t"]) == 4
    assert len(edits) == 1


def test_session_network_prediction_and_refresh():
    training = TrainingConfig(task="convergence")
    spec = NetworkSpec(layers=[LayerSpec(size=2, tau_s=1.0, theta=1.0, n_max=10)])
    net = build_network(run_config(spec, training), 4)
    net.weights = [np.array([[3.0, 3.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])]
    view = PatternEditorView(
        network_provider=lambda: net, training_provider=training.to_dict, t_max=5.0
    )
    assert view.t_max == 5.0
    assert view.predictions == {"count": 0, "first spike": 0}
    net.weights = [np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 3.0, 0.0, 0.0]])]
    view.param.trigger("refresh")  # take the session's new weights
    assert view.predictions == {"count": 1, "first spike": 1}
    view.param.trigger("clear")
    assert view.pattern_t.size == 0
    view.pattern = 1
    view.param.trigger("load")
    assert sorted(zip(view.pattern_neuron, view.pattern_t, strict=True)) == [
        (0, 0),
        (1, 0),
        (2, 2),
        (3, 1),
    ]


def test_big_network_falls_back_to_default():
    training = TrainingConfig(task="mnist", t_max=0.2)
    spec = NetworkSpec(layers=[LayerSpec(size=10, tau_s=0.13, theta=1.0, n_max=5)])
    net = build_network(run_config(spec, training), 784)
    view = PatternEditorView(network_provider=lambda: net, training_provider=training.to_dict)
    assert view.network.n_inputs == 4 and "too many inputs" in view.info.object
