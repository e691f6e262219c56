"""Small spatio-temporal spike tasks, including the paper's convergence task (docs/training.md §4).

Every task is a :class:`ToyTask`: input ``SpikeTrains`` ``[P, N, K]`` (one row per pattern),
integer labels, the number of classes, a suggested simulation length ``t_max`` (seconds) and a
``metadata`` dict of suggested network settings. Times are in seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ToyTask:
    """A labelled set of input spike patterns."""

    name: str
    inputs: Any  # batscope.engine.spikes.SpikeTrains, [patterns, n_inputs, slots]
    labels: np.ndarray  # int64 [patterns]
    n_classes: int
    t_max: float
    description: str = ""
    metadata: dict = field(default_factory=dict)

    @property
    def n_patterns(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_inputs(self) -> int:
        return int(self.inputs.times.shape[1])


def _trains(times: np.ndarray):
    from batscope.engine.spikes import SpikeTrains

    return SpikeTrains.from_arrays(np.asarray(times, dtype=np.float64))


def _convergence() -> ToyTask:
    times = np.array([[0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 2.0, 1.0]])[..., None]
    return ToyTask(
        name="convergence",
        inputs=_trains(times),
        labels=np.array([0, 1], dtype=np.int64),
        n_classes=2,
        t_max=10.0,
        description=(
            "Paper Fig. 3: 4 inputs, one spike each; pattern 0 t=(0,0,1,2) s is class 0, "
            "pattern 1 t=(0,0,2,1) s is class 1. Only the order of inputs 3 and 4 matters."
        ),
        metadata={
            "tau_s": 1.0,
            "theta": 1.0,
            "delta_theta": 1.0,
            "t_sim": 10.0,
            "optimizer": "sgd",
            "lr": 0.1,
            "epochs": 50,
            "batch_size": 2,
            "n_slots_multi": 10,
            "n_slots_single": 1,
            "source": "docs/training.md §4",
        },
    )


def _xor(early: float = 0.0, late: float = 1.0, reference: bool = True) -> ToyTask:
    if not (0 <= early < late):
        raise ValueError(f"need 0 <= early < late, got early={early}, late={late}")
    bits = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    times = np.where(bits == 1, late, early).astype(np.float64)
    if reference:
        times = np.concatenate([np.full((4, 1), early), times], axis=1)
    labels = (bits[:, 0] ^ bits[:, 1]).astype(np.int64)
    return ToyTask(
        name="xor",
        inputs=_trains(times[..., None]),
        labels=labels,
        n_classes=2,
        t_max=10.0,
        description=(
            f"Temporal XOR: two inputs spike early ({early} s, bit 0) or late ({late} s, bit 1); "
            "class = XOR of the bits"
            + (f"; input 0 is a reference spike at {early} s." if reference else ".")
        ),
        metadata={"tau_s": 1.0, "bits": bits.tolist(), "early": early, "late": late},
    )


def _first(
    n_samples: int = 100,
    n_inputs: int = 2,
    t_start: float = 1.0,
    min_gap: float = 0.2,
    max_gap: float = 1.0,
    seed: int = 0,
) -> ToyTask:
    if n_inputs < 2 or n_samples < 1:
        raise ValueError("need n_inputs >= 2 and n_samples >= 1")
    if not (0 < min_gap <= max_gap) or t_start < 0:
        raise ValueError("need 0 < min_gap <= max_gap and t_start >= 0")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_inputs, n_samples)
    first = rng.uniform(0.0, t_start, n_samples)
    times = first[:, None] + rng.uniform(min_gap, max_gap, (n_samples, n_inputs))
    times[np.arange(n_samples), labels] = first
    return ToyTask(
        name="first",
        inputs=_trains(times[..., None]),
        labels=labels.astype(np.int64),
        n_classes=n_inputs,
        t_max=float(t_start + max_gap + 8.0),
        description=(
            f"Which input spiked first: {n_inputs} inputs, one spike each; the label is the "
            f"index of the earliest, which leads the others by {min_gap}..{max_gap} s."
        ),
        metadata={"tau_s": 1.0, "seed": seed, "min_gap": min_gap, "max_gap": max_gap},
    )


def _patterns(
    n_classes: int = 3,
    n_inputs: int = 20,
    n_per_class: int = 20,
    t_span: float = 1.0,
    jitter: float = 0.02,
    p_silent: float = 0.0,
    seed: int = 0,
) -> ToyTask:
    if n_classes < 2 or n_inputs < 1 or n_per_class < 1:
        raise ValueError("need n_classes >= 2, n_inputs >= 1, n_per_class >= 1")
    if t_span <= 0 or jitter < 0 or not (0 <= p_silent < 1):
        raise ValueError("need t_span > 0, jitter >= 0 and 0 <= p_silent < 1")
    rng = np.random.default_rng(seed)
    templates = rng.uniform(0.0, t_span, (n_classes, n_inputs))
    templates[rng.random((n_classes, n_inputs)) < p_silent] = np.inf
    labels = np.repeat(np.arange(n_classes), n_per_class)
    order = rng.permutation(labels.size)
    labels = labels[order]
    times = templates[labels] + rng.normal(0.0, jitter, (labels.size, n_inputs))
    times = np.where(np.isfinite(times), np.maximum(times, 0.0), np.inf)
    return ToyTask(
        name="patterns",
        inputs=_trains(times[..., None]),
        labels=labels.astype(np.int64),
        n_classes=n_classes,
        t_max=float(t_span + 10 * max(jitter, 0.01) + 1.0),
        description=(
            f"{n_classes} random spike-time templates over {n_inputs} inputs (one spike each "
            f"within {t_span} s), {n_per_class} noisy copies per class with Gaussian jitter "
            f"sigma={jitter} s (clipped at 0)."
        ),
        metadata={"tau_s": 0.13 * t_span, "seed": seed, "templates": templates, "jitter": jitter},
    )


_TASKS: dict[str, Callable[..., ToyTask]] = {
    "convergence": _convergence,
    "xor": _xor,
    "first": _first,
    "patterns": _patterns,
}


def list_toy_tasks() -> list[str]:
    """Names accepted by :func:`toy_task`."""
    return list(_TASKS)


def toy_task(name: str, **kw) -> ToyTask:
    """Build a named toy task; keyword arguments are the task's parameters.

    ``"convergence"`` (paper Fig. 3; no parameters), ``"xor"`` (``early``, ``late``,
    ``reference``), ``"first"`` (``n_samples``, ``n_inputs``, ``t_start``, ``min_gap``,
    ``max_gap``, ``seed``) and ``"patterns"`` (``n_classes``, ``n_inputs``, ``n_per_class``,
    ``t_span``, ``jitter``, ``p_silent``, ``seed``).
    """
    if name not in _TASKS:
        raise ValueError(f"unknown toy task {name!r}; known: {', '.join(_TASKS)}")
    try:
        return _TASKS[name](**kw)
    except TypeError as exc:
        raise TypeError(f"toy task {name!r}: {exc}") from exc


def toy_task_from_events(
    events,
    labels,
    n_inputs: int,
    n_classes: int | None = None,
    t_max: float | None = None,
    name: str = "custom",
    description: str = "",
    n_patterns: int | None = None,
) -> ToyTask:
    """A user-defined task from ``(pattern, neuron, time)`` events and one label per pattern.

    ``events``: an ``[E, 3]`` array or a list of triples; a neuron may spike several times.
    The number of patterns is ``len(labels)`` (or ``n_patterns``, which must then agree).
    Raises ``ValueError`` for negative, NaN or infinite times, a pattern or neuron index out of
    range or not an integer, a label count that does not match, or bad labels.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {labels.shape}")
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError("labels must be integers")
    if labels.min() < 0:
        raise ValueError("labels must be >= 0")
    if n_patterns is not None and n_patterns != labels.size:
        raise ValueError(f"got {labels.size} labels for {n_patterns} patterns")
    p = labels.size
    if int(n_inputs) < 1:
        raise ValueError(f"n_inputs must be >= 1, got {n_inputs}")
    n_cls = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    if labels.max() >= n_cls:
        raise ValueError(f"label {labels.max()} out of range for n_classes={n_cls}")

    ev = np.asarray(events, dtype=np.float64) if len(events) else np.zeros((0, 3))
    if ev.ndim != 2 or ev.shape[1] != 3:
        raise ValueError(f"events must be (pattern, neuron, time) triples, got shape {ev.shape}")
    pat, neu, t = ev[:, 0], ev[:, 1], ev[:, 2]
    for what, col in (("pattern", pat), ("neuron", neu)):
        if np.isnan(col).any() or np.any(col != np.round(col)):
            raise ValueError(f"{what} indices must be integers")
    if np.isnan(t).any():
        raise ValueError("event times contain NaN")
    if (t < 0).any():
        raise ValueError(f"event times must be >= 0 (found {t.min()})")
    if np.isinf(t).any():
        raise ValueError("event times must be finite (leave a neuron out to make it silent)")
    if ev.shape[0]:
        if pat.min() < 0 or pat.max() >= p:
            raise ValueError(
                f"pattern index {int(pat.max() if pat.max() >= p else pat.min())} out of range: "
                f"{p} labels means patterns 0..{p - 1}"
            )
        if neu.min() < 0 or neu.max() >= n_inputs:
            raise ValueError(
                f"neuron index {int(neu.max() if neu.max() >= n_inputs else neu.min())} out of "
                f"range 0..{n_inputs - 1}"
            )
    from batscope.engine.spikes import SpikeTrains

    inputs = SpikeTrains.from_events(
        pat.astype(np.int64), neu.astype(np.int64), t, n_samples=p, n_neurons=int(n_inputs)
    )
    if t_max is None:
        t_max = float(t.max()) * 2 + 1.0 if t.size else 1.0
    return ToyTask(
        name=name,
        inputs=inputs,
        labels=labels.astype(np.int64),
        n_classes=n_cls,
        t_max=float(t_max),
        description=description or f"user-defined: {p} patterns, {n_inputs} inputs",
        metadata={"n_events": int(ev.shape[0])},
    )
