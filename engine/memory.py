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

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import numpy as np

from .layers import Conv2D, Dense, Pool2D
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
    """What the estimate needs to know of a layer fed by ``in_shape`` with ``in_slots`` slots per
    input neuron: its ``neurons``, spike buffer ``slots`` per neuron and ``weights`` (number of
    weights of one network), and the bytes of one sample it holds from the forward to the
    backward (``spikes``: its trains, slopes, counts and a pool's source slots; ``events``: its
    merged input lists; ``errors``: phi and delta), plus the scratch its forward and backward
    allocate beside them (``forward_scratch``, ``backward_scratch``; bytes for the whole batch
    and every group)."""

    neurons: int
    slots: int
    weights: int
    spikes: int = 0
    events: int = 0
    errors: int = 0
    forward_scratch: int = 0
    backward_scratch: int = 0


def _neuron_bytes(neurons: int, slots: int, item: int) -> tuple[int, int]:
    """(spikes, errors) bytes of one sample of a LIF layer: times and u_dot per slot, counts;
    phi and delta per slot."""
    return neurons * (slots * 2 * item + _INT32), 2 * neurons * slots * item


def dense_footprint(layer: Dense, in_shape, in_slots, batch, item, groups) -> LayerFootprint:
    """A dense layer: ``n`` neurons, ``n_max`` slots, ``n * n_pre`` weights; one merged input
    list per sample (engine/cpu_merge.py) with every presynaptic slot full."""
    n_pre = math.prod(in_shape)
    n, s = layer.n, layer.n_max
    n_ev = n_pre * in_slots
    w = groups * n * n_pre * item
    spikes, errors = _neuron_bytes(n, s, item)
    # merged inputs: times, decays (dtype), neuron and slot indices (int32), a count
    events = n_ev * (2 * item + 2 * _INT32) + _INT32
    chunks = _grad_chunks(n, groups, batch)
    # backward: spike buckets (int64 head per event, int64 per spike), the gradient's per-chunk
    # parts, W transposed for phi_pre; forward: W transposed, the merge's sort keys and order
    buckets = batch * (n_ev + 2 + n * s) * _INT64
    return LayerFootprint(
        n, s, n * n_pre, spikes, events, errors, w + 32 * n_ev, buckets + chunks * w + w
    )


def conv_footprint(layer: Conv2D, in_shape, in_slots, batch, item, groups) -> LayerFootprint:
    """A conv layer (engine/cpu_conv.py): (H-k+1)(W-k+1) positions x C_out neurons, ``n_max``
    slots, C_out k k C_in shared weights; one merged list per (sample, position) holding its
    receptive field, every slot full (k k C_in K_in entries); the backward's per-sample
    weight-gradient parts ([B, k k C_in, C_out])."""
    h_out, w_out, c_out = layer.output_shape(in_shape)
    k, c_in = layer.kernel_size, in_shape[2]
    n, s = h_out * w_out * c_out, layer.n_max
    n_w = c_out * k * k * c_in
    w = groups * n_w * item
    spikes, errors = _neuron_bytes(n, s, item)
    field = k * k * c_in * in_slots
    events = h_out * w_out * (field * (2 * item + 2 * _INT32) + _INT32)
    # forward: the weights as rows, a band of k input rows sorted per thread (keys, times,
    # codes, weight rows, columns, order, scratch: 6 int64 and a time an entry); backward: the
    # per-sample parts, rows, their sum
    band = k * in_shape[1] * c_in * in_slots * (6 * _INT64 + item) + w_out * (_INT64 + item)
    return LayerFootprint(n, s, n_w, spikes, events, errors, w + band, batch * w + 2 * w)


def pool_footprint(layer: Pool2D, in_shape, in_slots, batch, item, groups) -> LayerFootprint:
    """A pool layer (engine/cpu_pool.py): H/k W/k C neurons of k^2 K_in slots (times and the
    int32 source slot each, counts), no weights, no slopes; its phi is its delta."""
    h_out, w_out, c = layer.output_shape(in_shape)
    n, s = h_out * w_out * c, layer.out_slots(in_slots)
    return LayerFootprint(n, s, 0, n * (s * (item + _INT32) + _INT32), 0, n * s * item)


# layer type -> footprint(layer, in_shape, in_slots, batch, itemsize, groups); a new layer type
# adds one entry
FOOTPRINTS: dict[type, Callable[..., LayerFootprint]] = {
    Dense: dense_footprint,
    Conv2D: conv_footprint,
    Pool2D: pool_footprint,
}


def layer_footprint(layer, in_shape, in_slots=1, batch=1, dtype="float32", groups=1):
    """The :class:`LayerFootprint` of ``layer`` fed by ``in_shape`` (``(n,)`` or ``(H, W, C)``;
    an int is ``(n,)``) with ``in_slots`` spikes per input neuron."""
    if isinstance(in_shape, (int, np.integer)):
        in_shape = (int(in_shape),)
    item = resolve_dtype(dtype).itemsize
    for kind, footprint in FOOTPRINTS.items():
        if isinstance(layer, kind):
            return footprint(layer, tuple(in_shape), in_slots, batch, item, groups)
    raise TypeError(f"no memory footprint is known for a {type(layer).__name__} layer")


def _count(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _input_shape(n_inputs) -> tuple:
    """``n_inputs`` as a shape: an int is ``(n,)``; a tuple is ``(n,)`` or ``(H, W, C)``."""
    if isinstance(n_inputs, (tuple, list)):
        if len(n_inputs) not in (1, 3):
            raise ValueError(f"n_inputs must be (n,) or (H, W, C), got {n_inputs!r}")
        return tuple(_count("n_inputs", v) for v in n_inputs)
    return (_count("n_inputs", n_inputs),)


def _grad_chunks(n_post: int, groups: int, batch: int) -> int:
    """Sample chunks of the CPU weight-gradient kernel (engine/cpu.py ``dense_backward``)."""
    if n_post >= 128 or groups >= 8:
        return 1
    return max(1, min(8, -(-batch // groups)))


def estimate_network_memory(
    n_inputs,
    layers,
    batch: int,
    dtype="float32",
    input_slots: int = 1,
    training: bool = True,
    optimizer: str = "adam",
    groups: int = 1,
) -> MemoryEstimate:
    """Peak bytes of a loop of forwards (and, with ``training``, backward, loss errors and
    optimiser step) of a ``Network(n_inputs, layers)`` (``n_inputs`` an int, or the input shape
    ``(H, W, C)`` of a network with conv / pool layers) on batches of ``batch`` samples with
    ``input_slots`` spikes per input neuron, every spike buffer full (an upper bound; module
    docstring).

    The peak is the largest of three phases. Forward: the network still holds the previous
    batch's spikes, events and errors until the new forward returns. Backward: spikes, events,
    errors and the kernels' scratch. Optimiser step: the gradients, their batch mean and the
    validated copy of the new weights. ``groups`` independent networks share the batch (the
    kernels' group axis, as in the convergence sweep): weights, gradients and optimiser state
    are per group. ``optimizer`` is ``"adam"`` (two moment arrays per weight array) or ``"sgd"``.
    """
    shape = _input_shape(n_inputs)
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
    n_pre, s_pre = math.prod(shape), input_slots
    inputs = b * n_pre * (s_pre * item + _INT32)
    events = spikes = weights = errors = 0
    fwd_scratch = bwd_scratch = 0
    for layer in layers:
        fp = layer_footprint(layer, shape, s_pre, b, dtype, groups)
        events += b * fp.events
        spikes += b * fp.spikes
        weights += groups * fp.weights * item
        errors += b * fp.errors  # phi (from the next layer or the loss) and delta, kept
        fwd_scratch = max(fwd_scratch, fp.forward_scratch)
        bwd_scratch = max(bwd_scratch, fp.backward_scratch)
        shape = layer.output_shape(shape)
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
    "conv_footprint",
    "dense_footprint",
    "estimate_network_memory",
    "estimate_sweep_memory",
    "format_bytes",
    "layer_footprint",
    "parse_bytes",
    "pool_footprint",
]
