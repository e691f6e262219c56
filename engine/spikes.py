"""SpikeTrains: padded, sorted spike times of a batch of neurons (docs/model.md §1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import array_module, to_numpy

_DTYPES = {"float32": np.float32, "float64": np.float64}


def resolve_dtype(dtype: Any) -> np.dtype:
    """Return float32 or float64 as a NumPy dtype; anything else is a ValueError."""
    key = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if key not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return np.dtype(_DTYPES[key])


def _check_layout(times, counts, prefix: str) -> None:
    """Dtypes and shapes of ``times`` [B, N, K] and ``counts`` [B, N] (no values read)."""
    t_dtype = getattr(times, "dtype", None)
    c_dtype = getattr(counts, "dtype", None)
    if t_dtype is None or np.dtype(t_dtype).kind not in "fiu":
        raise TypeError(f"{prefix}times must be a numeric array, got {type(times).__name__}")
    if c_dtype is None or np.dtype(c_dtype).kind not in "iu":
        got = c_dtype if c_dtype is not None else type(counts).__name__
        raise TypeError(f"{prefix}counts must be an integer array, got {got}")
    if times.ndim != 3:
        raise ValueError(
            f"{prefix}times must have shape [batch, neurons, slots], got {times.shape}"
        )
    if tuple(counts.shape) != tuple(times.shape[:2]):
        raise ValueError(
            f"{prefix}counts has shape {tuple(counts.shape)}, expected {tuple(times.shape[:2])}"
        )


def check_counts(times, counts, prefix: str = "") -> None:
    """What a kernel needs to stay in bounds: ``times`` a float or integer array ``[B, N, K]``,
    ``counts`` an integer array ``[B, N]`` with ``0 <= counts <= K``.

    Checked on the arrays as given (before any cast to int32, which would wrap large values);
    cost: one min/max pass over ``counts`` (a device sync for CuPy arrays). ``TypeError`` /
    ``ValueError`` naming the array (``prefix`` + ``times`` / ``counts``) and the bound otherwise.
    """
    _check_layout(times, counts, prefix)
    if counts.size == 0:
        return
    low, high = int(counts.min()), int(counts.max())
    if low < 0 or high > times.shape[2]:
        raise ValueError(
            f"{prefix}counts must lie in [0, {times.shape[2]}] (the number of slots), "
            f"got values in [{low}, {high}]"
        )


def bounded_counts(times, counts, prefix: str = ""):
    """``counts`` a kernel can index by without leaving ``times``. NumPy counts are checked by
    :func:`check_counts` and returned as they are; CuPy counts get the layout checks and are
    clipped to ``[0, K]`` on the device, since reading their values would cost a sync
    (``Network.forward`` has already refused inputs whose counts are out of range)."""
    if array_module(counts) is np:
        check_counts(times, counts, prefix)
        return counts
    _check_layout(times, counts, prefix)
    return array_module(counts).clip(counts, 0, times.shape[2])


def check_trains(trains, name: str = "inp") -> None:
    """:func:`check_counts`, and the slots' values: the first ``counts`` slots of each neuron
    hold times >= 0 (no NaN, no -inf) and the rest ``+inf``, the padding the GPU merge relies on.

    For a ``SpikeTrains`` however it was built (``__init__`` does not validate); the order of
    the spikes within a neuron is not checked (the merges sort them).
    """
    if not isinstance(trains, SpikeTrains):
        raise TypeError(f"{name} must be a SpikeTrains, got {type(trains).__name__}")
    times, counts = trains.times, trains.counts
    check_counts(times, counts, f"{name}.")
    xp = array_module(times)
    slot = xp.arange(times.shape[2]).reshape(1, 1, -1)
    valid = slot < counts[..., None]
    if not bool(xp.where(valid, times >= 0, times == xp.inf).all()):
        raise ValueError(
            f"{name}: the first counts[b, n] slots must hold spike times >= 0 (no NaN) and the "
            "other slots +inf"
        )


@dataclass(frozen=True)
class SpikeTrains:
    """Spike times ``[B, N, K]`` (ascending per neuron, ``+inf`` padded) and counts ``[B, N]``.

    Arrays may be NumPy or CuPy; a ``SpikeTrains`` never copies on construction through
    ``__init__`` (use :meth:`from_arrays` for validated construction).
    """

    times: Any
    counts: Any

    @property
    def xp(self):
        """The array module (numpy or cupy) the arrays live in."""
        return array_module(self.times)

    @property
    def batch_size(self) -> int:
        return int(self.times.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.times.shape[1])

    @property
    def n_slots(self) -> int:
        return int(self.times.shape[2])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.times.dtype)

    @property
    def n_spikes(self) -> int:
        """Total number of spikes in the batch."""
        return int(self.counts.sum())

    @classmethod
    def from_arrays(cls, times, counts=None, dtype=None) -> SpikeTrains:
        """Validated constructor.

        ``times`` is ``[B, N, K]`` with the first ``counts[b, n]`` slots finite, ascending and
        non-negative and the rest ``+inf``. With ``counts=None`` they are inferred from the
        finite entries. Raises ``ValueError`` naming the problem (NaN, negative time, unsorted,
        counts that disagree with times) and ``TypeError`` for non-numeric input.
        """
        xp = array_module(times)
        if isinstance(times, (list, tuple)):
            times = np.asarray(times)
        if not hasattr(times, "dtype") or times.dtype.kind not in "fiu":
            raise TypeError(f"times must be a numeric array, got {type(times).__name__}")
        dt = resolve_dtype(
            dtype if dtype is not None else (times.dtype if times.dtype.kind == "f" else "float64")
        )
        times = xp.ascontiguousarray(times, dtype=dt)
        if times.ndim != 3:
            raise ValueError(f"times must have shape [batch, neurons, slots], got {times.shape}")
        if bool(xp.isnan(times).any()):
            raise ValueError("times contains NaN")
        if bool((times < 0).any()):
            raise ValueError("times contains negative spike times")
        if bool(xp.isneginf(times).any()):
            raise ValueError("times contains -inf")
        finite = xp.isfinite(times)
        inferred = finite.sum(axis=2).astype(xp.int32)
        if counts is None:
            counts = inferred
        else:
            counts = xp.asarray(counts)
            if counts.dtype.kind not in "iu":
                if counts.dtype.kind == "f" and bool((counts == xp.round(counts)).all()):
                    counts = counts.astype(xp.int32)
                else:
                    raise TypeError("counts must be an integer array")
            counts = xp.ascontiguousarray(counts, dtype=xp.int32)
            if counts.shape != times.shape[:2]:
                raise ValueError(
                    f"counts has shape {counts.shape}, expected {times.shape[:2]} to match times"
                )
            if bool((counts != inferred).any()):
                raise ValueError("counts disagree with times: counts must equal the finite slots")
        k = times.shape[2]
        slot = xp.arange(k).reshape(1, 1, k)
        if bool((finite & (slot >= counts[..., None])).any()):
            raise ValueError(
                "times: finite spike after +inf padding (finite slots must come first)"
            )
        if k > 1:
            with np.errstate(invalid="ignore"):  # inf - inf in padding; masked below
                d = times[..., 1:] - times[..., :-1]
            valid = finite[..., 1:]
            if bool((valid & (d < 0)).any()):
                raise ValueError("times must be sorted ascending per neuron")
        return cls(times, counts)

    @classmethod
    def from_events(
        cls,
        sample,
        neuron,
        time,
        n_samples: int,
        n_neurons: int,
        n_slots: int | None = None,
        dtype="float64",
    ) -> SpikeTrains:
        """Build from event lists ``(sample, neuron, time)``; events are sorted per neuron.

        ``n_slots`` defaults to the largest number of events of one neuron (at least 1).
        """
        sample = np.asarray(sample)
        neuron = np.asarray(neuron)
        time = np.asarray(time, dtype=np.float64)
        if not (sample.shape == neuron.shape == time.shape) or sample.ndim != 1:
            raise ValueError("sample, neuron and time must be 1-D arrays of equal length")
        if sample.size and (sample.dtype.kind not in "iu" or neuron.dtype.kind not in "iu"):
            raise TypeError("sample and neuron must be integer arrays")
        if n_samples < 1 or n_neurons < 1:
            raise ValueError("n_samples and n_neurons must be >= 1")
        if sample.size:
            if sample.min() < 0 or sample.max() >= n_samples:
                raise ValueError(f"sample index out of range [0, {n_samples})")
            if neuron.min() < 0 or neuron.max() >= n_neurons:
                raise ValueError(f"neuron index out of range [0, {n_neurons})")
            if np.isnan(time).any():
                raise ValueError("time contains NaN")
            if (time < 0).any() or np.isinf(time).any():
                raise ValueError("time must be finite and non-negative")
        flat = sample.astype(np.int64) * n_neurons + neuron.astype(np.int64)
        order = np.lexsort((time, flat))
        flat, time = flat[order], time[order]
        counts = np.bincount(flat, minlength=n_samples * n_neurons).astype(np.int32)
        k_needed = int(counts.max()) if counts.size else 0
        k = max(1, k_needed) if n_slots is None else int(n_slots)
        if k < 1:
            raise ValueError("n_slots must be >= 1")
        if k_needed > k:
            raise ValueError(f"a neuron has {k_needed} events but n_slots is {k}")
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        slot = np.arange(flat.size) - starts[flat]
        times = np.full((n_samples * n_neurons, k), np.inf, dtype=resolve_dtype(dtype))
        times[flat, slot] = time
        return cls(times.reshape(n_samples, n_neurons, k), counts.reshape(n_samples, n_neurons))

    @classmethod
    def empty(cls, batch: int, neurons: int, slots: int = 1, dtype="float64", xp=np):
        """A batch with no spikes at all."""
        dt = resolve_dtype(dtype)
        return cls(
            xp.full((batch, neurons, slots), xp.inf, dtype=dt),
            xp.zeros((batch, neurons), dtype=xp.int32),
        )

    def numpy(self) -> SpikeTrains:
        """The same trains as NumPy arrays (a no-op on the CPU)."""
        return SpikeTrains(to_numpy(self.times), to_numpy(self.counts))

    def take(self, index) -> SpikeTrains:
        """The samples selected by ``index`` (int array or slice) along the batch axis."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        if not isinstance(index, slice):
            index = self.xp.asarray(index)
        return SpikeTrains(self.times[index], self.counts[index])

    def until(self, t: float) -> SpikeTrains:
        """Only the spikes with time ``<= t`` (for decisions at time ``t``)."""
        xp = self.xp
        keep = self.times <= t
        times = xp.where(keep, self.times, xp.inf).astype(self.times.dtype)
        return SpikeTrains(times, keep.sum(axis=2).astype(xp.int32))

    def astype(self, dtype) -> SpikeTrains:
        return SpikeTrains(self.times.astype(resolve_dtype(dtype)), self.counts)

    def __repr__(self) -> str:
        b, n, k = self.times.shape
        return f"SpikeTrains(batch={b}, neurons={n}, slots={k}, spikes={self.n_spikes})"
