"""Hostile SpikeTrains: whatever a caller builds, the kernels never index out of bounds.

``SpikeTrains(times, counts)`` does not validate, so before these checks counts larger than the
number of slots made the CPU merge read past the times (wrong spikes, a segfault or, for huge
counts, an allocation that got the process killed) and negative counts wrote out of bounds.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from batscope.engine import Dense, Network, SpikeTrains, Uniform, cpu, gpu
from batscope.engine.spikes import bounded_counts, check_counts, check_trains

SLOTS = 2


@pytest.fixture(scope="module")
def net():
    return Network(3, [Dense(2, 0.1, 0.05, n_max=3)], dtype="float64", seed=0)


def _times():
    return np.full((2, 3, SLOTS), 0.1)


HOSTILE = {
    "counts above the slots": (_times(), np.full((2, 3), SLOTS + 1, np.int32), "counts must lie"),
    "negative counts": (_times(), np.full((2, 3), -1, np.int32), "counts must lie"),
    "int64 counts that wrap to 1 as int32": (
        _times(),
        np.full((2, 3), 2**32 + 1, np.int64),
        "counts must lie",
    ),
    "float counts": (_times(), np.full((2, 3), 1.5), "integer array"),
    "counts of another shape": (_times(), np.ones((2, 4), np.int32), "counts has shape"),
    "2-D times": (np.zeros((2, 3)), np.ones((2, 3), np.int32), "times must have shape"),
    "NaN in a valid slot": (
        np.where(np.arange(SLOTS) == 0, np.nan, 0.2) * np.ones((2, 3, 1)),
        np.full((2, 3), SLOTS, np.int32),
        "no NaN",
    ),
    "negative time": (np.full((2, 3, SLOTS), -0.1), np.full((2, 3), SLOTS, np.int32), ">= 0"),
    "-inf time": (np.full((2, 3, SLOTS), -np.inf), np.full((2, 3), SLOTS, np.int32), ">= 0"),
    "finite padding": (np.zeros((2, 3, SLOTS)), np.ones((2, 3), np.int32), r"\+inf"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_forward_refuses_hostile_spike_trains(net, case):
    times, counts, message = HOSTILE[case]
    before = net.weights[0].copy()
    with pytest.raises((ValueError, TypeError), match=message):
        net.forward(SpikeTrains(times, counts), 1.0)
    np.testing.assert_array_equal(net.weights[0], before)
    assert net.outputs is None  # nothing was run


def test_forward_accepts_full_and_empty_buffers():
    net = Network(3, [Dense(2, 0.1, 0.05, n_max=3, init=Uniform(0.5, 1.0))], seed=0)
    full = net.forward(SpikeTrains(_times(), np.full((2, 3), SLOTS, np.int64)), 1.0)
    empty = net.forward(SpikeTrains(np.full((2, 3, SLOTS), np.inf), np.zeros((2, 3), np.uint8)), 1)
    assert int(full[0].counts.sum()) > 0 and int(empty[0].counts.sum()) == 0


@pytest.mark.parametrize("counts", [SLOTS + 1, -1, 2**32 + 1])
def test_kernel_entry_points_refuse_counts_out_of_range(counts):
    t = _times()
    bad = np.full((2, 3), counts, np.int64)
    good = np.full((2, 3), SLOTS, np.int32)
    w = np.ones((1, 2, 3))
    g = np.zeros(2, np.int32)
    with pytest.raises(ValueError, match=r"pre_counts must lie in \[0, 2\]"):
        cpu.dense_forward(t, bad, w, g, 0.1, 0.05, 0.05, 3, 1.0)
    with pytest.raises(ValueError, match="pre_counts must lie"):
        cpu.merge_inputs(t, bad, 0.2)
    tt, cc, uu = cpu.dense_forward(t, good, w, g, 0.1, 0.05, 0.05, 3, 1.0)
    post = np.full(cc.shape, counts if counts < 0 else tt.shape[2] + 1, np.int64)
    with pytest.raises(ValueError, match="post_counts must lie"):
        cpu.dense_backward(t, good, w, g, tt, post, uu, np.ones_like(tt), 0.1, 0.05, True)
    with pytest.raises(ValueError, match="pre_counts must lie"):
        gpu.forward_with(np, _no_launch, t, bad, w, g, 0.1, 0.05, 0.05, 3, 1.0)
    with pytest.raises(ValueError, match="post_counts must lie"):
        gpu.backward_with(np, _no_launch, t, good, w, g, tt, post, uu, tt, 0.1, 0.05, True)


def _no_launch(*args):
    raise AssertionError("a kernel was launched with counts out of range")


def test_check_functions_name_the_array():
    t = _times()
    with pytest.raises(
        ValueError, match=r"x_counts must lie in \[0, 2\] .*, got values in \[0, 5\]"
    ):
        check_counts(t, np.array([[0, 5, 1], [1, 1, 1]]), "x_")
    with pytest.raises(ValueError, match="y_counts must lie"):
        bounded_counts(t, np.full((2, 3), -3), "y_")
    ok = np.ones((2, 3), np.int32)
    assert bounded_counts(t, ok) is ok
    with pytest.raises(TypeError, match="SpikeTrains"):
        check_trains((t, ok))
    check_trains(SpikeTrains(np.where(np.arange(SLOTS) == 0, 0.1, np.inf) * np.ones_like(t), ok))


def test_hostile_counts_do_not_crash_the_process(tmp_path):
    """In a fresh process (a crash would kill pytest itself): every hostile input is refused
    with an exception and the process exits normally."""
    script = textwrap.dedent(
        """
        import numpy as np
        from batscope.engine import Dense, Network, SpikeTrains, cpu

        net = Network(3, [Dense(2, 0.1, 0.05, n_max=3)], dtype="float64")
        t = np.full((2, 3, 2), 0.1)
        refused = 0
        for c in (3, 7, 500_000_000, -1, -100_000_000, 2**32 + 1, 2**63 - 1):
            counts = np.full((2, 3), c, np.int64)
            for run in (
                lambda: net.forward(SpikeTrains(t, counts), 1.0),
                lambda: cpu.merge_inputs(t, counts, 0.2),
            ):
                try:
                    run()
                except ValueError:
                    refused += 1
        print("refused", refused)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["refused", "14"]


def test_events_merged_from_other_inputs_are_refused():
    """The merged events are indices into the inputs: from other inputs they would read out of
    bounds, so the kernels compare them with the inputs they are given."""
    t = _times()
    c = np.full((2, 3), SLOTS, np.int32)
    w = np.ones((1, 2, 3))
    g = np.zeros(2, np.int32)
    events = cpu.merge_inputs(t, c, 0.2)
    cpu.dense_forward(t, c, w, g, 0.1, 0.05, 0.05, 3, 1.0, events=events)  # its own: accepted
    wider = np.full((2, 5, SLOTS), 0.1)
    other = cpu.merge_inputs(wider, np.full((2, 5), SLOTS, np.int32), 0.2)
    few = np.ones((2, 3), np.int32)
    # the same spike count per sample as (t, c), but neuron 3, 4 or slot 2 of other inputs
    high_neurons = cpu.merge_inputs(wider, np.array([[0, 0, 2, 2, 2]] * 2, np.int32), 0.2)
    deep = cpu.merge_inputs(np.full((2, 3, 3), 0.1), np.array([[3, 3, 0]] * 2, np.int32), 0.2)
    cases = [(t, c, other), (t, few, events), (t, c, high_neurons), (t, c, deep)]
    for bad_t, bad_c, ev in cases:
        with pytest.raises(ValueError, match="events were merged from other inputs"):
            cpu.dense_forward(bad_t, bad_c, w, g, 0.1, 0.05, 0.05, 3, 1.0, events=ev)
    tt, cc, uu = cpu.dense_forward(t, c, w, g, 0.1, 0.05, 0.05, 3, 1.0)
    with pytest.raises(ValueError, match="events were merged from other inputs"):
        cpu.dense_backward(t, few, w, g, tt, cc, uu, np.ones_like(tt), 0.1, 0.05, True, events)
