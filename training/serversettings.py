"""What the server lets every session use: a data folder, downloads, a folder of run folders.

``batscope serve`` sets them in the server's environment (``--data-dir``, ``--allow-download``,
``--runs``); they are read at every call, never from a browser:

- ``BATSCOPE_DATA_DIR``: a folder of official dataset files, one subfolder per dataset
  (``mnist/``, ``fashion-mnist/``, ``emnist/``), searched before the cache (``$BATSCOPE_DATA``,
  datasets/cache.py); files lying in the folder itself are taken for any MNIST-format dataset
  and left to the hash check when loaded;
- ``BATSCOPE_ALLOW_DOWNLOAD=1``: a session may download a full dataset missing from both (checked
  against the pinned hashes, datasets/loaders.py); off by default;
- ``BATSCOPE_RUNS_DIR``: the run folders participants may open (training/runlibrary.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from batscope.datasets import files_present

from .eventdata import missing_data
from .trainer import IMAGE_TASKS, Trainer

DATA_DIR_ENV = "BATSCOPE_DATA_DIR"
DOWNLOAD_ENV = "BATSCOPE_ALLOW_DOWNLOAD"
RUNS_DIR_ENV = "BATSCOPE_RUNS_DIR"


def _folder(env: str) -> Path | None:
    value = os.environ.get(env, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path | None:
    """The server's data folder, or None (the cache only)."""
    return _folder(DATA_DIR_ENV)


def download_allowed() -> bool:
    """True when the server lets sessions download a full dataset."""
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes")


def runs_dir() -> Path | None:
    """The server's folder of run folders, or None (opening runs is off)."""
    return _folder(RUNS_DIR_ENV)


def full_data_refusal(task: str) -> str:
    """Why the full dataset of image task ``task`` cannot be used here ("" when it can: its files
    are in the data folder or the cache, or the server allows a download)."""
    name = IMAGE_TASKS[task]
    if files_present(name, data_dir()) or download_allowed():
        return ""
    # the message goes to a participant's page: it names no path of the server's disk
    return (
        f"The full {name} dataset is not on this server (neither in its data folder nor in its "
        "cache) and the server does not download. Whoever runs the server can fetch the "
        f"official files (python -m batscope.datasets fetch {name}) or start it with "
        "batscope serve --data-dir FOLDER or --allow-download. The embedded sample is used."
    )


def event_data_refusal(task: str) -> str:
    """Why event task ``task`` cannot train on this server ("" when it can), for a participant's
    page: it says what is missing and how the server's owner adds it, and names no path of the
    server's disk (the command line's message, ``eventdata.missing_data``, does)."""
    missing = missing_data(task, data_dir())
    if not missing:
        return ""
    if "h5py" in missing:
        return missing
    return (
        "The SHD files (shd_train.h5 and shd_test.h5, or .h5.gz) are not on this server, and "
        "batscope does not download SHD. Whoever runs the server can put them in FOLDER/shd/ "
        "and start it with batscope serve --data-dir FOLDER."
    )


def server_trainer(config: dict) -> Trainer:
    """The app's Trainer: full datasets from the server's data folder or the cache, downloaded
    (and checked) only when the server allows it."""
    return Trainer(config, data_dir=data_dir(), download=download_allowed())
