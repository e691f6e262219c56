"""batscope.datasets: data for BATS experiments (docs/training.md §1).

Loaders for MNIST, Fashion-MNIST and EMNIST from their official files (cached, SHA-256 checked,
offline-friendly), an embedded real sample, TTFS spike encoding, toy spatio-temporal tasks,
seeded batching and elastic distortion; the Yin-Yang benchmark (generated) and the Spiking
Heidelberg Digits (local HDF5 files)::

    from batscope import datasets
    images, labels = datasets.load("mnist", split="train")      # uint8 [N, 28, 28], int64 [N]
    images, labels = datasets.load_sample("mnist", split="test")  # embedded, offline
    spikes = datasets.encode_ttfs(images, t_enc=0.1)             # engine SpikeTrains
    task = datasets.toy_task("convergence")
    xy, labels = datasets.load("yin-yang", split="train")        # float [5000, 4], int64
"""

from .augment import elastic_distort
from .batching import batches, epoch_permutation, n_batches, train_val_split
from .download import DownloadError
from .encoding import T_ENC, encode_ttfs, ttfs_times
from .idx import parse_idx, read_idx, write_idx
from .loaders import cache_dir, files_present, load
from .registry import DATASETS, class_names, get_spec, list_datasets
from .sample import load_sample, sample_manifest
from .shd import load_shd
from .toy import ToyTask, list_toy_tasks, toy_task, toy_task_from_events
from .verify import ChecksumError, UnverifiedDataWarning, UnverifiedFileError
from .yinyang import encode_yinyang, generate_yinyang

__all__ = [
    "DATASETS",
    "T_ENC",
    "ChecksumError",
    "DownloadError",
    "ToyTask",
    "UnverifiedDataWarning",
    "UnverifiedFileError",
    "batches",
    "cache_dir",
    "class_names",
    "elastic_distort",
    "encode_ttfs",
    "encode_yinyang",
    "epoch_permutation",
    "files_present",
    "generate_yinyang",
    "get_spec",
    "list_datasets",
    "list_toy_tasks",
    "load",
    "load_sample",
    "load_shd",
    "n_batches",
    "parse_idx",
    "read_idx",
    "sample_manifest",
    "toy_task",
    "toy_task_from_events",
    "train_val_split",
    "ttfs_times",
    "write_idx",
]
