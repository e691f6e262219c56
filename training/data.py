"""The data of a run: the app's (embedded sample, toy tasks) or a full official dataset.

A full dataset comes from ``batscope.datasets.load`` (local files in ``data_dir`` or the cache,
or a checked download when asked for); the validation split is the last ``n_val`` training
samples (docs/training.md §2: model selection on validation, never on test).
"""

from __future__ import annotations

import numpy as np
from batscope import datasets
from batscope.datasets.batching import train_val_split
from batscope.datasets.encoding import encode_ttfs
from batscope.datasets.registry import get_spec
from batscope.datasets.verify import UnverifiedFileError

from .eventdata import EventDataMissing, load_event_data
from .state import EVENT_TASKS
from .taskdata import TaskData
from .trainer import IMAGE_TASKS, load_task


class DataMissing(RuntimeError):
    """A dataset's files are not there; the message says how to get them."""


def _load(name: str, split: str, data_dir, download: bool, verify: bool):
    try:
        return datasets.load(name, split, data_dir, download=download, verify=verify)
    except UnverifiedFileError as exc:
        raise DataMissing(
            f"{exc}\nTo train on these files anyway, pass --no-verify: the run's config.json then "
            "records run.verify = false, so its results are labelled as unverified data."
        ) from None
    except FileNotFoundError as exc:
        how = (
            f"Get it with: batscope train ... --download (fetches the official files once, "
            f"checked against pinned SHA-256 hashes), or python -m batscope.datasets fetch {name}, "
            "or put the official files in a folder and pass --data-dir FOLDER "
            "(e.g. FOLDER/train-images-idx3-ubyte.gz)."
        )
        raise DataMissing(f"{exc}\n{how}") from None


def load_run_data(config: dict, data_dir=None, download: bool = False) -> TaskData:
    """The inputs of a run configuration (``config["run"]["data"]``: ``"sample"`` or ``"full"``)."""
    tr, run = config["training"], config.get("run", {})
    if tr["task"] in EVENT_TASKS:  # Yin-Yang and SHD: their own splits (training.eventdata)
        try:
            return load_event_data(config, data_dir)
        except EventDataMissing as exc:
            raise DataMissing(str(exc)) from None
    keep = run.get("augment") is not None  # the images are distorted afresh every epoch
    if run.get("data", "sample") == "sample" or tr["task"] not in IMAGE_TASKS:
        return load_task(tr, data_dir, keep_images=keep)
    name = IMAGE_TASKS[tr["task"]]
    verify = bool(run.get("verify", True))
    x_tr, y_tr = _load(name, "train", data_dir, download, verify)
    x_te, y_te = _load(name, "test", data_dir, download, verify)
    n = len(x_tr)
    n_val = int(run.get("n_val", 0))
    if not 0 <= n_val < n:
        raise ValueError(f"run.n_val must be in [0, {n}), got {n_val}")
    tr_idx, val_idx = train_val_split(n, n_val) if n_val else (np.arange(n), None)
    t_enc, dtype = float(tr["t_enc"]), tr.get("dtype", "float64")
    enc = encode_ttfs(x_tr[tr_idx], t_enc, dtype=dtype)
    val = encode_ttfs(x_tr[val_idx], t_enc, dtype=dtype) if val_idx is not None else None
    return TaskData(
        enc,
        np.asarray(y_tr[tr_idx]),
        val,
        np.asarray(y_tr[val_idx]) if val_idx is not None else None,
        encode_ttfs(x_te, t_enc, dtype=dtype),
        np.asarray(y_te),
        get_spec(name).n_classes,
        t_enc,
        False,
        np.asarray(x_tr[tr_idx]) if keep else None,
    )
