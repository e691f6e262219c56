"""Synthetic snapshots for the view tests (no engine, no browser)."""

import numpy as np
import pytest
from batscope.engine.analysis import latency_curve, layer_sparsity
from batscope.training.telemetry import (
    ErrorFlow,
    LayerActivity,
    MembraneWindow,
    Snapshot,
    sparsity_rows,
)


def random_trains(rng, n, k, t_max, p_fire=0.5):
    """``times [n, k]`` sorted and +inf padded, ``counts [n]``."""
    counts = np.where(rng.random(n) < p_fire, rng.integers(1, k + 1, n), 0).astype(np.int32)
    times = np.sort(rng.uniform(0, t_max, (n, k)), axis=1)
    times[np.arange(k) >= counts[:, None]] = np.inf
    return times, counts


def make_snapshot(
    sizes=(20, 12, 4),
    k=5,
    t_max=0.2,
    seed=0,
    step=1,
    epoch=0,
    errors=True,
    membrane=True,
    sparsity=True,
    latency=True,
    weights=True,
    **extra_fields,
):
    """A consistent snapshot for a net with layer ``sizes`` (input first), ``k`` slots a neuron.

    The heavy fields are synthetic when True, absent when False, and taken as given otherwise.
    """
    given = {
        name: value
        for name, value in dict(
            errors=errors, membrane=membrane, sparsity=sparsity, latency=latency, weights=weights
        ).items()
        if not isinstance(value, bool)
    }
    rng = np.random.default_rng(seed)
    names = ["input"] + [f"dense{i}" for i in range(1, len(sizes) - 1)] + ["output"]
    activity = []
    for i, (name, n) in enumerate(zip(names, sizes, strict=True)):
        times, counts = random_trains(rng, n, 1 if i == 0 else k, t_max)
        theta = float("nan") if i == 0 else 0.3
        activity.append(LayerActivity(name, times, counts, theta, theta, 0 if i == 0 else k))
    errs = ()
    if errors:
        errs = []
        for i in range(1, len(sizes)):
            a = activity[i]
            slot = np.arange(k) < a.counts[:, None]
            phi = np.where(slot, rng.normal(0, 1, a.times.shape), 0.0)
            mu = np.where(slot, rng.normal(0, 0.5, a.times.shape), 0.0)
            errs.append(ErrorFlow(i, phi, mu, phi + mu))
        errs = tuple(errs)
    mem = None
    if membrane:
        t = np.linspace(0, t_max, 300)
        neurons = np.array([0, 1])
        mem = MembraneWindow(1, neurons, t, np.sin(np.outer(neurons + 1, t) * 40) * 0.3, 0.3, 0.3)
    spars = ()
    if sparsity:
        spars = tuple(
            layer_sparsity(
                names[i], rng.integers(0, k + 1, (8, n)).astype(np.int32) * (rng.random(n) < 0.8), k
            )
            for i, n in enumerate(sizes)  # the input layer too, as the trainer reports it
        )
    lat = None
    if latency:
        out_t, out_c = random_trains(rng, 8 * sizes[-1], k, t_max)
        lat = latency_curve(
            out_t.reshape(8, sizes[-1], k),
            out_c.reshape(8, sizes[-1]),
            rng.integers(0, sizes[-1], 8),
            np.linspace(0, t_max, 21),
            t_enc=0.1,
            label="multi-spike",
        )
    w = None
    if weights:
        w = tuple(rng.normal(0, 1, (sizes[i + 1], sizes[i])) for i in range(len(sizes) - 1))
    fields = dict(
        step=step,
        epoch=epoch,
        batch=0,
        n_batches=10,
        epochs=5,
        label=1,
        prediction=1,
        t_max=t_max,
        activity=tuple(activity),
        errors=errs,
        membrane=mem,
        sparsity=spars,
        latency=lat,
        weights=w,
    )
    fields.update(given)
    fields["sparsity_rows"] = sparsity_rows(fields["sparsity"], step, epoch)
    fields.update(extra_fields)
    return Snapshot(**fields)


@pytest.fixture
def snapshot():
    return make_snapshot()


@pytest.fixture
def empty_snapshot():
    """A snapshot that carries no heavy field at all (before the first forward pass)."""
    return Snapshot(step=0, epoch=0, batch=0, n_batches=1, epochs=1)


@pytest.fixture(name="make_snapshot")
def make_snapshot_fixture():
    """The ``make_snapshot`` builder, for tests that need several or unusual snapshots."""
    return make_snapshot


def _served(view):
    """Serialize the view as a served page would; the changes it sends from then are collected."""
    from bokeh.document import Document

    doc, events = Document(), []
    doc.add_root(view.__panel__().get_root(doc))
    doc.to_json()
    doc.on_change(events.append)
    return events


@pytest.fixture
def served():
    """``served(view) -> events``: the Bokeh changes a view sends after it was first shown."""
    return _served
