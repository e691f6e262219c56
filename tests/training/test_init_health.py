"""Silent outputs at initialisation (issue 11, item 6): the count and the redraw-silent remedy,
pinned on a tiny network whose silent neurons are known by construction."""

from __future__ import annotations

import json

import numpy as np
import pytest
from batscope.engine import Dense, Network, SpikeTrains
from batscope.engine.init import Uniform
from batscope.training.init_health import dead_at_init, silent_neurons
from batscope.training.remedies import MAX_REDRAWS, redraw_silent

T_MAX = 10.0


def tiny_network(out_init=None) -> Network:
    """2 inputs -> 2 hidden (neuron 1 dead) -> 3 outputs (output 1 silent)."""
    net = Network(
        2,
        [Dense(2, tau_s=1.0, theta=1.0, n_max=3), Dense(3, 1.0, 1.0, n_max=3, init=out_init)],
        dtype="float64",
    )
    # one input of weight w peaks at w·τ/4 = w/2 (τ = 2 s): 5 fires, -5 never does
    net.weights = [np.array([[5.0, 5.0], [-5.0, -5.0]]), np.array([[5.0, 0], [-5.0, 0], [5.0, 0]])]
    return net


def inputs(n: int = 4) -> SpikeTrains:
    return SpikeTrains.from_arrays(np.zeros((n, 2, 1)))


def test_silent_neurons_counts_neurons_silent_on_every_sample():
    counts = np.array([[0, 1, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]])
    assert silent_neurons(counts) == (0, 3)
    assert silent_neurons(np.ones((2, 3), int)) == ()
    assert silent_neurons(np.zeros((0, 2), int)) == (0, 1)  # no sample: nothing ever fired
    many = np.zeros((200, 2), int)
    many[:2, 0] = 1  # neuron 0 fires on 1 % of the samples, neuron 1 on 1.5 %
    many[:3, 1] = 4
    assert silent_neurons(many) == ()
    assert silent_neurons(many, max_fraction=0.01) == (0,)
    with pytest.raises(ValueError, match=r"\[samples, neurons\]"):
        silent_neurons(np.zeros(3))


def test_dead_at_init_on_a_tiny_network():
    found = dead_at_init(tiny_network(), inputs(), T_MAX)
    assert found == {"silent_outputs": (1,), "rare_outputs": (1,), "dead_hidden": (0.5,)}


def test_redraw_silent_redraws_only_the_silent_rows_until_they_fire():
    net = tiny_network(Uniform(2.0, 3.0))  # any draw of this init fires
    before = [w.copy() for w in net.weights]
    assert redraw_silent(net, inputs(), T_MAX, seed=0) == {1: 1}
    after = net.weights
    np.testing.assert_array_equal(after[0], before[0])  # hidden layer untouched
    np.testing.assert_array_equal(after[1][[0, 2]], before[1][[0, 2]])  # live outputs untouched
    assert ((after[1][1] >= 2.0) & (after[1][1] <= 3.0)).all()  # the layer's own distribution
    assert dead_at_init(net, inputs(), T_MAX)["silent_outputs"] == ()
    again = tiny_network(Uniform(2.0, 3.0))
    redraw_silent(again, inputs(), T_MAX, seed=0)
    np.testing.assert_array_equal(again.weights[1], after[1])  # seeded: reproducible


def test_redraw_silent_reports_an_output_it_cannot_revive():
    net = tiny_network(Uniform(-1.0, -0.5))  # no draw of this init can fire
    assert redraw_silent(net, inputs(), T_MAX, seed=0) == {1: -1}
    assert MAX_REDRAWS >= 1


def test_redraw_silent_changes_nothing_when_every_output_fires():
    net = tiny_network()
    w = net.weights
    w[1][1] = 5.0
    net.weights = w
    assert redraw_silent(net, inputs(), T_MAX, seed=0) == {}
    np.testing.assert_array_equal(net.weights[1][1], [5.0, 5.0])


def test_train_remedy_redraw_silent_starts_with_every_output_alive(tmp_path, capsys):
    from batscope.app.cli import main

    from .test_train_cli import rows, tiny_config

    cfg = tiny_config(tmp_path, out_theta=0.6, epochs=1)  # outputs 4-8 silent at init (seed 0),
    # 2 and 3 fire on at most 1 % of the training samples
    out = tmp_path / "runs"
    assert (
        main(["train", "--config", str(cfg), "--out", str(out), "--remedy", "redraw-silent"]) == 0
    )
    assert "remedy redraw-silent (beyond the paper)" in capsys.readouterr().err
    run = out / "tiny" / "seed-0"
    events = [json.loads(x) for x in (run / "events.jsonl").read_text().splitlines()]
    redraw = [e for e in events if e["kind"] == "redraw-silent"]
    assert (
        len(redraw) == 1
        and redraw[0]["epoch"] == 0
        and "[2, 3, 4, 5, 6, 7, 8]" in redraw[0]["message"]
    )
    epoch0 = [r for r in rows(run / "metrics.csv") if r["epoch"] == "0" and r["split"] == "val"]
    assert epoch0[0]["silent_outputs"] == ""  # evaluated after the redraw
    assert json.loads((run / "config.json").read_text())["run"]["remedies"] == ["redraw-silent"]
