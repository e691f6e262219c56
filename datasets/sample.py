"""The embedded sample: small, real, class-balanced MNIST and Fashion-MNIST subsets.

2,000 train and 1,000 test images per dataset (200 and 100 per class), stored in
``datasets/sample/<name>_<split>.npz`` (uint8 ``images`` [N, 28, 28], uint8 ``labels``, int32
``source_index``) and described by ``manifest.json`` (sources, SHA-256 of every file, selection
seed). Built by ``scripts/build_sample.py``; read with ``allow_pickle=False``.

The Fashion-MNIST sample comes from a copy with an **unofficial train/test split**: fine for a
demo, never for a reported accuracy. Use :func:`batscope.datasets.load` for real experiments.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from .registry import check_split
from .verify import ChecksumError

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
MANIFEST = SAMPLE_DIR / "manifest.json"
SAMPLE_NAMES = ("mnist", "fashion-mnist")
_ALIASES = {"fashion": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fmnist": "fashion-mnist"}


def sample_filename(name: str, split: str) -> str:
    return f"{name}_{split}.npz"


@lru_cache(maxsize=1)
def sample_manifest() -> dict:
    """The sample's manifest (sources, hashes, seed, per-file class counts)."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def load_sample(name: str = "mnist", split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """The embedded sample as ``(images uint8 [N, 28, 28], labels int64 [N])``.

    Works offline and never reads anything outside the package. The file is checked against
    the manifest's SHA-256 before use. The Fashion-MNIST sample comes from an unofficial
    train/test split: use it for demos, never for a reported accuracy.
    """
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in SAMPLE_NAMES:
        raise ValueError(f"no embedded sample for {name!r}; available: {', '.join(SAMPLE_NAMES)}")
    check_split(split)
    fname = sample_filename(key, split)
    path = SAMPLE_DIR / fname
    data = path.read_bytes()
    want = sample_manifest()["files"][fname]["sha256"]
    if hashlib.sha256(data).hexdigest() != want:
        raise ChecksumError(f"{path}: embedded sample does not match its manifest hash")
    with np.load(path, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    if images.dtype != np.uint8 or images.ndim != 3 or labels.shape != (images.shape[0],):
        raise ValueError(f"{path}: unexpected sample layout {images.dtype} {images.shape}")
    return images, labels.astype(np.int64)
