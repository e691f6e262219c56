"""The run data of the datasets the command line trains on that the app's task list lacks.

``"yin-yang"``: the standard generated splits (5 000 train, 1 000 validation, 1 000 test;
datasets/yinyang.py), each feature one spike in [0, 20 ms] plus the bias spike at 10 ms; the
published validation split selects the model and the test split is reported.

``"shd"``: the Spiking Heidelberg Digits from local files only (datasets/shd.py: nothing is
downloaded and no checksum is pinned, so the files are used only with ``run.verify = false``,
i.e. ``--no-verify``). The dataset publishes train and test only, so ``training.val_fraction``
of the training samples, drawn with the fixed seed ``SHD_VAL_SEED`` (the same held-out set for
every run seed), are held out for model selection (docs/training.md §2: never select on test).
"""

from __future__ import annotations

import functools

import numpy as np
from batscope.datasets import encode_yinyang, load_shd
from batscope.datasets.batching import train_val_split
from batscope.datasets.shd import N_CLASSES, read_shd, shd_file
from batscope.datasets.verify import UnverifiedFileError
from batscope.datasets.yinyang import CLASS_NAMES, T_LATE, load_yinyang
from batscope.datasets.yinyang import N_CLASSES as YY_CLASSES
from batscope.engine.spikes import SpikeTrains

from .evaluation import take
from .taskdata import TaskData

SHD_VAL_SEED = 0


class EventDataMissing(RuntimeError):
    """The files of an event dataset are missing or refused; the message says what to do."""


def missing_data(task: str, data_dir=None) -> str:
    """Why ``task`` 's data cannot be read here ("" when it can): SHD needs both official files
    in ``data_dir`` (or its ``shd/``; the app passes the server's data folder) or in the cache
    (``$BATSCOPE_DATA/shd``), and the package h5py."""
    if task != "shd":
        return ""
    try:
        for split in ("train", "test"):
            shd_file(split, data_dir)
        import h5py  # noqa: F401, PLC0415  (the optional reader, datasets/shd.py)
    except FileNotFoundError as exc:
        return str(exc)
    except ImportError:
        return "reading SHD needs the optional package 'h5py': pip install 'batscope[shd]'"
    return ""


@functools.lru_cache(maxsize=4)
def _shd_extent(path: str, mtime_ns: int, size: int) -> tuple[int, int]:
    _, units, labels = read_shd(path)
    most = max((int(np.bincount(u).max()) for u in units if u.size), default=1)
    return len(labels), most


def shd_extent(split: str, data_dir=None) -> tuple[int, int]:
    """``(samples, K)`` of an SHD split's file: K is the most spikes one channel fires in one
    sample, the slots its SpikeTrains get (read once per file version)."""
    path = shd_file(split, data_dir)
    stat = path.stat()
    return _shd_extent(str(path), stat.st_mtime_ns, stat.st_size)


def load_event_data(config: dict, data_dir=None) -> TaskData:
    """The inputs of a run whose ``training.task`` is an event dataset (``state.EVENT_TASKS``)."""
    tr = config["training"]
    if tr["task"] == "yin-yang":
        return _yinyang(tr.get("dtype", "float64"))
    return _shd(tr, data_dir, bool(config.get("run", {}).get("verify", True)))


def _yinyang(dtype) -> TaskData:
    split = {s: load_yinyang(s) for s in ("train", "val", "test")}
    enc = {s: encode_yinyang(x, dtype=dtype) for s, (x, _) in split.items()}
    return TaskData(
        enc["train"],
        split["train"][1],
        enc["val"],
        split["val"][1],
        enc["test"],
        split["test"][1],
        YY_CLASSES,
        T_LATE,
        False,
        points=split["test"][0][:, :2],  # (x, y) of the displayed (test) samples
        class_names=CLASS_NAMES,
    )


def _shd_split(split: str, data_dir, verify: bool, dtype) -> tuple[SpikeTrains, np.ndarray]:
    if verify:  # refused before the files are even looked for: the result would be the same
        raise EventDataMissing(
            "shd: batscope pins no checksum for the SHD files (see batscope.datasets.shd), so "
            "they cannot be verified. Pass --no-verify to train on your copy: the run's "
            "config.json then records run.verify = false."
        )
    try:
        return load_shd(split, data_dir=data_dir, verify=False, dtype=dtype)
    except FileNotFoundError as exc:
        raise EventDataMissing(
            f"{exc}\nPass --data-dir FOLDER with FOLDER/shd_train.h5 and FOLDER/shd_test.h5 "
            "(or .h5.gz) in the official layout."
        ) from None
    except (ImportError, UnverifiedFileError) as exc:
        raise EventDataMissing(str(exc)) from None


def _shd(tr: dict, data_dir, verify: bool) -> TaskData:
    dtype = tr.get("dtype", "float64")
    x_tr, y_tr = _shd_split("train", data_dir, verify, dtype)
    x_te, y_te = _shd_split("test", data_dir, verify, dtype)
    n = min(int(tr.get("n_train", len(y_tr))), len(y_tr))
    n_val = int(round(n * float(tr.get("val_fraction", 0.0))))
    tr_idx, val_idx = train_val_split(n, n_val, SHD_VAL_SEED) if n_val else (np.arange(n), None)
    finite = x_tr.times[np.isfinite(x_tr.times)]
    t_in = float(finite.max()) if finite.size else float(tr["t_max"])
    return TaskData(
        take(x_tr, tr_idx),
        np.asarray(y_tr[tr_idx]),
        take(x_tr, val_idx) if val_idx is not None else None,
        np.asarray(y_tr[val_idx]) if val_idx is not None else None,
        x_te,
        np.asarray(y_te),
        N_CLASSES,
        t_in,  # the "encoding window" of recorded spikes ends with the last input spike
        False,
    )
