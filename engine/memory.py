"""Memory estimates: the peak bytes a forward / training step or a sweep will allocate.

The estimate is an upper bound computed from the shapes alone, before anything is allocated, so a
caller (the app, a script) can refuse a run that would not fit. It counts the arrays the CPU
engine really allocates (engine/network.py, engine/cpu.py, engine/optim.py) with every spike
buffer full (count == n_max in every neuron): the merged input event lists and the backward's
spike buckets are sized by the largest spike count of a sample, which is at most that. A sparse
network needs less; one that saturates its buffers needs about this much (tests/engine/
test_memory.py holds it within 1x-2x of the traced peak). Not counted: the caller's data set and
the interpreter's and libraries' own memory. The GPU backend keeps the same arrays in device
memory with another scratch (a device argsort over every input slot, two suffix-sum arrays
instead of the buckets): there the estimate is an approximation, not measured.

Byte sizes in text (:func:`parse_bytes`) follow the SI / IEC rule: ``kB``, ``MB``, ``GB``, ``TB``
and the one-letter ``K``, ``M``, ``G``, ``T`` are powers of 1000; ``KiB``, ``MiB``, ``GiB``,
``TiB`` are powers of 1024. :func:`format_bytes` writes powers of 1000.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np

from .layers import Dense
from .spikes import resolve_dtype

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*$")

OPTIMIZERS = ("adam", "sgd")
_OPTIMIZER_COPIES = {"adam": 2, "sgd": 0}  # moment arrays per weight array (engine/optim.py)
_INT32, _INT64 = 4, 8


def parse_bytes(text: str | int) -> int:
    """A byte count from an integer or a text such as ``"2GB"``, ``"1.5 GiB"``, ``"800M"``.

    Units (case-insensitive, optional space): none or ``B`` (bytes); ``k``/``kB``, ``M``/``MB``,
    ``G``/``GB``, ``T``/``TB`` (powers of 1000); ``KiB``, ``MiB``, ``GiB``, ``TiB`` (powers of
    1024). Fractions are rounded down to whole bytes. ``ValueError`` for a negative, NaN, empty or
    unparsable value or an unknown unit; ``TypeError`` for anything but ``str`` or ``int``.
    """
    if isinstance(text, (bool, np.bool_)):
        raise TypeError("a byte size must be an integer or a text like '2GB', got a bool")
    if isinstance(text, (int, np.integer)):
        if text < 0:
            raise ValueError(f"a byte size must be >= 0, got {text}")
        return int(text)
    if not isinstance(text, str):
        raise TypeError(f"a byte size must be an integer or a text, got {type(text).__name__}")
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(
            f"not a byte size: {text!r} (expected a number >= 0 and an optional unit such as "
            "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)"
        )
    number, unit = match.groups()
    if unit.lower() not in _UNITS:
        raise ValueError(
            f"unknown unit {unit!r} in {text!r} (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)"
        )
    try:
        value = Decimal(number) * _UNITS[unit.lower()]
    except InvalidOperation as exc:  # the pattern admits only plain decimals: unreachable guard
        raise ValueError(f"not a byte size: {text!r}") from exc
    return int(value)


def format_bytes(n: int) -> str:
    """``n`` bytes as a short text in powers of 1000: ``"800 B"``, ``"1.2 GB"``, ``"350 MB"``."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if n < 1000:
        return f"{int(n)} B"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB", "PB"):
        value /= 1000.0
        if value < 999.95 or unit == "PB":
            return f"{value:.1f} {unit}" if value < 99.95 else f"{value:.0f} {unit}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak bytes ``total`` and its ``parts`` (name -> bytes; they sum to ``total``)."""

    total: int
    parts: dict[str, int]

    def describe(self) -> str:
        """One line: the total, then the non-zero parts, largest first."""
        parts = sorted(((v, k) for k, v in self.parts.items() if v > 0), reverse=True)
        detail = ", ".join(f"{k} {format_bytes(v)}" for v, k in parts)
        return f"about {format_bytes(self.total)}" + (f" ({detail})" if detail else "")


@dataclass(frozen=True)
class LayerFootprint:
    """What the estimate needs to know of a layer: its ``neurons``, spike buffer ``slots`` per
    neuron and ``weights`` (number of weights of one network)."""

    neurons: int
    slots: int
    weights: int


def dense_footprint(layer: Dense, n_pre: int) -> LayerFootprint:
    """A dense layer: ``n`` neurons, ``n_max`` slots, ``n * n_pre`` weights."""
    return LayerFootprint(neurons=layer.n, slots=layer.n_max, weights=layer.n * n_pre)


# layer type -> footprint(layer, neurons of the previous layer); a new layer type adds one entry
FOOTPRINTS: dict[type, Callable[..., LayerFootprint]] = {Dense: dense_footprint}


def layer_footprint(layer, n_pre: int) -> LayerFootprint:
    """The :class:`LayerFootprint` of ``layer`` fed by ``n_pre`` neurons."""
    for kind, footprint in FOOTPRINTS.items():
        if isinstance(layer, kind):
            return footprint(layer, n_pre)
    raise TypeError(f"no memory footprint is known for a {type(layer).__name__} layer")


def _count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _grad_chunks(n_post: int, groups: int, batch: int) -> int:
    """Sample chunks of the CPU weight-gradient kernel (engine/cpu.py ``dense_backward``)."""
    if n_post >= 128 or groups >= 8:
        return 1
    return max(1, min(8, -(-batch // groups)))


def estimate_network_memory(
    n_inputs: int,
    layers,
    batch: int,
    dtype="float32",
    input_slots: int = 1,
    training: bool = True,
    optimizer: str = "adam",
    groups: int = 1,
) -> MemoryEstimate:
    """Peak bytes of a loop of forwards (and, with ``training``, backward, loss errors and
    optimiser step) of a ``Network(n_inputs, layers)`` on batches of ``batch`` samples with
    ``input_slots`` spikes per input neuron, every spike buffer full (an upper bound; module
    docstring).

    The peak is the largest of three phases. Forward: the network still holds the previous
    batch's spikes, events and errors until the new forward returns. Backward: spikes, events,
    errors and the kernels' scratch. Optimiser step: the gradients, their batch mean and the
    validated copy of the new weights. ``groups`` independent networks share the batch (the
    kernels' group axis, as in the convergence sweep): weights, gradients and optimiser state
    are per group. ``optimizer`` is ``"adam"`` (two moment arrays per weight array) or ``"sgd"``.
    """
    n_inputs = _count("n_inputs", n_inputs)
    batch = _count("batch", batch)
    input_slots = _count("input_slots", input_slots)
    groups = _count("groups", groups)
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ValueError("layers must be a non-empty list of layers")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    item = resolve_dtype(dtype).itemsize
    b = batch
    n_pre, s_pre = n_inputs, input_slots
    inputs = b * n_inputs * (s_pre * item + _INT32)
    events = spikes = weights = errors = 0
    fwd_scratch = bwd_scratch = 0
    for layer in layers:
        fp = layer_footprint(layer, n_pre)
        n_ev = n_pre * s_pre  # merged input list of one sample, every slot full
        train = b * fp.neurons * fp.slots
        w = groups * fp.weights * item
        # merge_inputs: times, decays (dtype), neuron and slot indices (int32), counts
        events += b * (n_ev * (2 * item + 2 * _INT32) + _INT32)
        spikes += train * 2 * item + b * fp.neurons * _INT32  # times, u_dot; counts
        weights += w
        errors += 2 * train * item  # phi (from the next layer or the loss) and delta, kept
        # forward: W transposed; the merge's per-thread sort keys and order (32 bytes an event)
        fwd_scratch = max(fwd_scratch, w + 32 * n_ev)
        # backward: spike buckets (int64 head per event, item per spike), the gradient's
        # per-chunk parts, W transposed for phi_pre
        chunks = _grad_chunks(fp.neurons, groups, b)
        buckets = b * (n_ev + 2 + fp.neurons * fp.slots) * _INT64
        bwd_scratch = max(bwd_scratch, buckets + chunks * w + w)
        n_pre, s_pre = fp.neurons, fp.slots
    held = {"inputs": inputs, "input events": events, "spike buffers": spikes}
    if not training:
        return _peak(
            [
                {
                    **held,
                    "weights": weights,
                    "scratch": fwd_scratch,
                    "previous batch": sum(held.values()),
                }
            ]
        )
    state = _OPTIMIZER_COPIES[optimizer] * weights
    out = b * n_pre * s_pre
    # the loss's errors of the output spikes and the backward's validity mask of them
    loss = 2 * out * item + out
    held = {**held, "errors": errors, "optimizer state": state}
    return _peak(
        [
            {**held, "weights": weights, "scratch": fwd_scratch,
             "previous batch": inputs + events + spikes + errors},
            {**held, "weights": weights, "gradients": weights, "scratch": bwd_scratch + loss},
            {**held, "weights": 2 * weights, "gradients": 2 * weights},
        ]
    )  # fmt: skip


def _peak(phases: list[dict[str, int]]) -> MemoryEstimate:
    """The phase with the most bytes, as a :class:`MemoryEstimate`."""
    parts = max(phases, key=lambda p: sum(p.values()))
    return MemoryEstimate(total=sum(parts.values()), parts=parts)


def estimate_sweep_memory(config, chunk_cells: int | None = None) -> MemoryEstimate:
    """Peak bytes of ``convergence.run_sweep(config, chunk_cells)``: the runs of a chunk (cells ×
    repeats 4 → 2 networks, two patterns each) train together on the group axis with plain
    gradient descent, plus the sweep's result arrays and the chunk's initial weights."""
    from .convergence import N_IN, N_OUT, RESET, TAU_S, THETA, VARIANTS, SweepConfig  # noqa: PLC0415

    if not isinstance(config, SweepConfig):
        raise TypeError(f"config must be a SweepConfig, got {type(config).__name__}")
    n_cells = len(config.means) * len(config.stds)
    chunk = n_cells if chunk_cells is None else _count("chunk_cells", chunk_cells)
    runs = min(chunk, n_cells) * config.repeats
    n_max = VARIANTS[config.variant][0]
    train = estimate_network_memory(
        N_IN,
        [Dense(N_OUT, tau_s=TAU_S, theta=THETA, reset=RESET, n_max=n_max)],
        batch=2 * runs,
        dtype=config.dtype,
        training=True,
        optimizer="sgd",
        groups=runs,
    )
    parts = dict(train.parts)
    item = resolve_dtype(config.dtype).itemsize
    # labels, group (int64 / int32 per sample); best, first_full, accuracy per run; the loss
    parts["scratch"] = (
        parts.get("scratch", 0) + 2 * runs * (_INT64 + _INT32) + runs * (2 * item + _INT64 + item)
    )
    # initial weights: per-run draws and their stacked, scaled and concatenated float64 copies
    parts["weights"] += 4 * runs * N_OUT * N_IN * 8
    # the result: best and first_full per (cell, repeat), accuracy and done per cell
    parts["sweep results"] = n_cells * config.repeats * 16 + n_cells * 9
    return MemoryEstimate(total=sum(parts.values()), parts=parts)


__all__ = [
    "FOOTPRINTS",
    "LayerFootprint",
    "MemoryEstimate",
    "dense_footprint",
    "estimate_network_memory",
    "estimate_sweep_memory",
    "format_bytes",
    "layer_footprint",
    "parse_bytes",
]
