"""Toy spatio-temporal tasks and user-defined tasks."""

import numpy as np
import pytest
from batscope.datasets import ToyTask, list_toy_tasks, toy_task, toy_task_from_events


def test_convergence_task_is_the_papers():
    t = toy_task("convergence")
    assert isinstance(t, ToyTask)
    assert t.inputs.times.shape == (2, 4, 1)
    np.testing.assert_array_equal(t.inputs.times[..., 0], [[0, 0, 1, 2], [0, 0, 2, 1]])
    np.testing.assert_array_equal(t.inputs.counts, np.ones((2, 4), np.int32))
    np.testing.assert_array_equal(t.labels, [0, 1])
    assert t.n_classes == 2 and t.t_max == 10.0 and t.metadata["tau_s"] == 1.0


def test_all_tasks_build():
    assert set(list_toy_tasks()) >= {"convergence", "xor", "first", "patterns"}
    for name in list_toy_tasks():
        t = toy_task(name)
        assert t.inputs.times.shape[0] == t.labels.shape[0] == t.n_patterns
        assert t.labels.dtype == np.int64 and t.labels.max() < t.n_classes
        assert t.t_max > np.nanmax(np.where(np.isfinite(t.inputs.times), t.inputs.times, 0))


def test_xor_and_first_labels():
    x = toy_task("xor", early=0.0, late=1.0)
    np.testing.assert_array_equal(x.labels, [0, 1, 1, 0])
    bits = (x.inputs.times[:, 1:, 0] == 1.0).astype(int)
    np.testing.assert_array_equal(bits[:, 0] ^ bits[:, 1], x.labels)
    f = toy_task("first", n_samples=50, n_inputs=3, seed=2)
    np.testing.assert_array_equal(np.argmin(f.inputs.times[..., 0], axis=1), f.labels)
    assert f.n_classes == 3


def test_patterns_seeded():
    a = toy_task("patterns", n_classes=4, n_inputs=8, n_per_class=5, jitter=0.01, seed=3)
    b = toy_task("patterns", n_classes=4, n_inputs=8, n_per_class=5, jitter=0.01, seed=3)
    c = toy_task("patterns", n_classes=4, n_inputs=8, n_per_class=5, jitter=0.01, seed=4)
    np.testing.assert_array_equal(a.inputs.times, b.inputs.times)
    assert not np.array_equal(a.inputs.times, c.inputs.times)
    assert a.inputs.times.shape == (20, 8, 1) and np.bincount(a.labels).tolist() == [5] * 4
    assert (a.inputs.times >= 0).all()


def test_unknown_task_and_bad_kw():
    with pytest.raises(ValueError, match="unknown toy task"):
        toy_task("nope")
    with pytest.raises(TypeError):
        toy_task("convergence", foo=1)


def test_from_events():
    ev = [(0, 0, 0.5), (0, 0, 0.1), (0, 2, 1.0), (1, 1, 0.3)]
    t = toy_task_from_events(ev, labels=[1, 0], n_inputs=3)
    assert t.inputs.times.shape == (2, 3, 2)
    np.testing.assert_array_equal(t.inputs.times[0, 0], [0.1, 0.5])
    np.testing.assert_array_equal(t.inputs.counts, [[2, 0, 1], [0, 1, 0]])
    assert t.n_classes == 2 and t.t_max > 1.0


@pytest.mark.parametrize(
    "events, labels, n_inputs, match",
    [
        ([(0, 0, -0.1)], [0], 1, ">= 0"),
        ([(0, 0, float("nan"))], [0], 1, "NaN"),
        ([(0, 0, float("inf"))], [0], 1, "finite"),
        ([(0, 3, 0.1)], [0], 3, "neuron index 3"),
        ([(0, -1, 0.1)], [0], 3, "neuron index -1"),
        ([(2, 0, 0.1)], [0, 1], 1, "pattern index 2"),
        ([(0.5, 0, 0.1)], [0], 1, "integers"),
        ([(0, 0)], [0], 1, "triples"),
        ([(0, 0, 0.1)], [], 1, "non-empty"),
        ([(0, 0, 0.1)], [-1], 1, ">= 0"),
    ],
)
def test_from_events_validation(events, labels, n_inputs, match):
    with pytest.raises(ValueError, match=match):
        toy_task_from_events(events, labels, n_inputs)


def test_from_events_label_count():
    with pytest.raises(ValueError, match="3 labels for 2 patterns"):
        toy_task_from_events([(0, 0, 0.1)], [0, 1, 1], 1, n_patterns=2)
