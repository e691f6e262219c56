"""The Spiking Heidelberg Digits (SHD, Cramer et al. 2020) from its official HDF5 files.

Official layout of ``shd_train.h5`` / ``shd_test.h5`` (also distributed gzipped, ``.h5.gz``):
``/spikes/times`` (one variable-length float array per sample, seconds), ``/spikes/units``
(variable-length integer arrays, the input channel 0..699 of each spike) and ``/labels``
(integer class 0..19: digits 0-9 spoken in German, then in English). Other groups (``/extra``:
speakers, meta data) are ignored.

Files are looked for, raw or gzipped, in ``data_dir``, ``data_dir/shd`` and
``$BATSCOPE_DATA/shd``. Nothing is downloaded: get the files from the dataset's official page
(``OFFICIAL_PAGE``) yourself. **No checksum is pinned**: the digests quoted by third parties
disagree with each other and we could not obtain the official files to compute one, and we never
guess hashes. So, as for any unpinned file (see ``verify.py``), ``verify=True`` refuses the
files with :class:`~batscope.datasets.verify.UnverifiedFileError`, and ``verify=False`` loads
them with an :class:`~batscope.datasets.verify.UnverifiedDataWarning`.

Every file is checked before use: the three datasets present, float times, integer units and
labels, one times and one units array of equal length per sample, times finite and >= 0, units
in 0..699, labels in 0..19; anything else is a ``ValueError`` naming the dataset and sample.
``h5py`` is an optional dependency (``pip install 'batscope[shd]'``).
"""

from __future__ import annotations

import gzip
import io
import warnings
import zlib
from pathlib import Path

import numpy as np
from batscope.engine.spikes import SpikeTrains

from .cache import cache_dir
from .idx import GZIP_MAGIC
from .verify import UnverifiedDataWarning, UnverifiedFileError

N_CHANNELS = 700
N_CLASSES = 20
SPLITS = ("train", "test")
OFFICIAL_PAGE = "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/"
CLASS_NAMES = tuple(f"{d}-de" for d in range(10)) + tuple(f"{d}-en" for d in range(10))


class DroppedSpikesWarning(UserWarning):
    """``max_spikes`` dropped spikes of channels that fired more often."""


def _require_h5py():
    try:
        import h5py  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            "reading SHD needs the optional package 'h5py': pip install 'batscope[shd]' "
            "(or pip install h5py)"
        ) from exc
    return h5py


def shd_file(split: str, data_dir=None) -> Path:
    """The first existing ``shd_<split>.h5`` or ``.h5.gz``; FileNotFoundError naming the places."""
    if split not in SPLITS:
        raise ValueError(f"shd split must be one of {SPLITS}, got {split!r}")
    folders = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        folders += [d, d / "shd"]
    folders.append(cache_dir() / "shd")
    names = (f"shd_{split}.h5", f"shd_{split}.h5.gz")
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return folder / name
    where = "\n  ".join(str(f) for f in folders)
    raise FileNotFoundError(
        f"shd {split} split not found: missing {names[0]} (or {names[1]}).\nSearched:\n  "
        f"{where}\nbatscope does not download SHD: get the official files from {OFFICIAL_PAGE} "
        f"and put them in {cache_dir() / 'shd'} (or pass data_dir=...)."
    )


def _open_bytes(path: Path) -> bytes:
    stored = path.read_bytes()
    if stored[:2] != GZIP_MAGIC:
        return stored
    try:
        return gzip.decompress(stored)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip stream ({exc})") from exc


def _dataset(f, key: str, where: str):
    h5py = _require_h5py()
    try:
        obj = f.get(key)
    except (KeyError, TypeError, ValueError):  # a path through something that is not a group
        obj = None
    if not isinstance(obj, h5py.Dataset):
        raise ValueError(f"{where}: missing dataset /{key} (official SHD layout)")
    if obj.ndim != 1:
        raise ValueError(f"{where}: /{key} must be 1-D, got shape {obj.shape}")
    return obj


def _vlen_kind(ds, where: str) -> str:
    h5py = _require_h5py()
    base = h5py.check_vlen_dtype(ds.dtype)
    if base is None:
        raise ValueError(f"{where}: /{ds.name.lstrip('/')} must hold variable-length arrays")
    return np.dtype(base).kind


def read_shd(path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """``(times per sample [float64], units per sample [int64], labels int64)``, validated."""
    h5py = _require_h5py()
    path = Path(path)
    where = str(path)
    try:
        f = h5py.File(io.BytesIO(_open_bytes(path)), "r")
    except OSError as exc:
        raise ValueError(f"{where}: not an HDF5 file ({exc})") from exc
    try:
        with f:
            times, units, labels = _read_arrays(f, where)
    except OSError as exc:  # HDF5 errors while reading a damaged file
        raise ValueError(f"{where}: unreadable HDF5 content ({exc})") from exc
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        if t.shape != u.shape:
            raise ValueError(f"{where}: sample {i} has {t.size} times but {u.size} units")
        if t.size and not (np.isfinite(t).all() and t.min() >= 0):
            raise ValueError(f"{where}: sample {i} has negative or non-finite spike times")
        if u.size and (u.min() < 0 or u.max() >= N_CHANNELS):
            raise ValueError(
                f"{where}: sample {i} has units outside 0..{N_CHANNELS - 1} ({u.min()}..{u.max()})"
            )
    if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise ValueError(f"{where}: labels outside 0..{N_CLASSES - 1}")
    return times, units, labels


def _read_arrays(f, where: str):
    """The three official datasets of an open file, dtype- and length-checked."""
    times_ds = _dataset(f, "spikes/times", where)
    units_ds = _dataset(f, "spikes/units", where)
    labels_ds = _dataset(f, "labels", where)
    if _vlen_kind(times_ds, where) != "f":
        raise ValueError(f"{where}: /spikes/times must hold floating-point times")
    if _vlen_kind(units_ds, where) not in "iu":
        raise ValueError(f"{where}: /spikes/units must hold integer channel numbers")
    if labels_ds.dtype.kind not in "iu":
        raise ValueError(f"{where}: /labels must be integers, got dtype {labels_ds.dtype}")
    n = len(labels_ds)
    if len(times_ds) != n or len(units_ds) != n:
        raise ValueError(
            f"{where}: {n} labels but {len(times_ds)} /spikes/times and "
            f"{len(units_ds)} /spikes/units entries"
        )
    labels = labels_ds[()].astype(np.int64)
    times = [np.asarray(t, dtype=np.float64) for t in times_ds[()]]
    units = [np.asarray(u, dtype=np.int64) for u in units_ds[()]]
    return times, units, labels


def load_shd(
    split: str = "train",
    data_dir=None,
    verify: bool = True,
    max_spikes: int | None = None,
    dtype="float64",
) -> tuple[SpikeTrains, np.ndarray]:
    """``(SpikeTrains [n, 700, K], labels int64 [n])`` with the exact spike times of a split.

    ``K`` is the most spikes one channel fires in one sample of the split, or ``max_spikes``:
    then each channel keeps its first ``max_spikes`` spikes and a
    :class:`DroppedSpikesWarning` says how many were dropped. ``verify`` as in the module
    docstring (no hash is pinned, so ``verify=False`` is needed to use the files). Times are
    kept exactly in float64; ``dtype="float32"`` halves the memory of a split and is still exact
    for files that store float16 or float32 times.
    """
    if max_spikes is not None and (
        isinstance(max_spikes, bool) or not isinstance(max_spikes, (int, np.integer))
    ):
        raise TypeError(f"max_spikes must be an integer or None, got {type(max_spikes).__name__}")
    if max_spikes is not None and max_spikes < 1:
        raise ValueError(f"max_spikes must be >= 1, got {max_spikes}")
    path = shd_file(split, data_dir)
    if verify:
        raise UnverifiedFileError(
            f"{path}: cannot verify it: batscope pins no checksum for SHD (see "
            "batscope.datasets.shd). Pass verify=False to use your copy at your own risk."
        )
    warnings.warn(
        f"{path}: using SHD WITHOUT checksum verification (verify=False)",
        UnverifiedDataWarning,
        stacklevel=2,
    )
    times, units, labels = read_shd(path)
    n = len(labels)
    if n == 0:
        raise ValueError(f"{path}: the file holds no samples")
    sizes = np.array([t.size for t in times], dtype=np.int64)
    sample = np.repeat(np.arange(n), sizes)
    unit, time = np.concatenate(units), np.concatenate(times)
    if max_spikes is not None and time.size:
        order = np.lexsort((time, unit, sample))
        sample, unit, time = sample[order], unit[order], time[order]
        flat = sample * N_CHANNELS + unit
        starts = np.r_[0, np.flatnonzero(np.diff(flat)) + 1]
        rank = np.arange(flat.size) - np.repeat(starts, np.diff(np.r_[starts, flat.size]))
        keep = rank < max_spikes
        dropped = int((~keep).sum())
        if dropped:
            channels = len(np.unique(flat[~keep]))
            warnings.warn(
                f"shd {split}: max_spikes={max_spikes} dropped {dropped} of {time.size} spikes "
                f"({100 * dropped / time.size:.2f} %) in {channels} (sample, channel) pairs",
                DroppedSpikesWarning,
                stacklevel=2,
            )
        sample, unit, time = sample[keep], unit[keep], time[keep]
    trains = SpikeTrains.from_events(sample, unit, time, n, N_CHANNELS, dtype=dtype)
    return trains, labels
