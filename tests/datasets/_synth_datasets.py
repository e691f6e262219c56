"""Helpers for the dataset tests: tiny synthetic MNIST-like datasets with pinned hashes."""

from __future__ import annotations

import gzip
import hashlib
import zipfile
from pathlib import Path

import numpy as np
from batscope.datasets.idx import idx_bytes
from batscope.datasets.registry import ArchiveSpec, DatasetSpec, FileSpec

STEMS = {"train": "train", "test": "t10k"}


def arrays(split: str, n_classes: int = 3, offset: int = 0):
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 12 if split == "train" else 6
    images = rng.integers(0, 256, (n, 4, 5), dtype=np.uint8)
    labels = (np.arange(n) % n_classes + offset).astype(np.uint8)
    return images, labels


def gz(data: bytes, level: int = 9) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


def make_spec(name="synth", content_hash=True, gz_md5=False, level=9, archive=None, **kw):
    """A DatasetSpec whose pinned hashes match ``arrays()`` (content SHA-256 and/or gz MD5)."""
    files = {}
    for split in ("train", "test"):
        imgs, labs = arrays(split, offset=kw.get("label_offset", 0))
        for kind, arr, dim in (("images", imgs, 3), ("labels", labs, 1)):
            fname = f"{STEMS[split]}-{kind}-idx{dim}-ubyte"
            if archive is not None:
                fname = f"{name}-{split}-{kind}-idx{dim}-ubyte"
            raw = idx_bytes(arr)
            files[(split, kind)] = FileSpec(
                fname,
                sha256=hashlib.sha256(raw).hexdigest() if content_hash else None,
                gz_md5=hashlib.md5(gz(raw, level)).hexdigest() if gz_md5 else None,
                member=f"gzip/{fname}.gz" if archive is not None else None,
            )
    return DatasetSpec(
        name=name,
        title="synthetic",
        subdir=name,
        files=files,
        n_classes=3,
        counts={"train": 12, "test": 6},
        mirrors=("http://127.0.0.1:9/none/",),
        archive=archive,
        **kw,
    )


def write_files(spec: DatasetSpec, folder: Path, compress=True, level=9, splits=("train", "test")):
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split in splits:
        imgs, labs = arrays(split, offset=spec.label_offset)
        for kind, arr in (("images", imgs), ("labels", labs)):
            fs = spec.file(split, kind)
            raw = idx_bytes(arr)
            p = folder / (fs.gz_name if compress else fs.filename)
            p.write_bytes(gz(raw, level) if compress else raw)
            out[(split, kind)] = p
    return out


def write_archive(spec: DatasetSpec, path: Path) -> bytes:
    """A zip like EMNIST's gzip.zip holding gzip/<name>.gz for every file; returns its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for split in ("train", "test"):
            imgs, labs = arrays(split, offset=spec.label_offset)
            for kind, arr in (("images", imgs), ("labels", labs)):
                fs = spec.file(split, kind)
                info = zipfile.ZipInfo(fs.member, date_time=(1980, 1, 1, 0, 0, 0))
                z.writestr(info, gz(idx_bytes(arr)))
    return path.read_bytes()


def archive_spec(md5: str) -> ArchiveSpec:
    return ArchiveSpec("gzip.zip", ("http://127.0.0.1:9/none/gzip.zip",), md5=md5)
