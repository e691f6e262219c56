#!/usr/bin/env python3
"""Build the embedded sample ``datasets/sample/*.npz`` + ``manifest.json`` (deterministic).

Selects 200 train and 100 test images per class (2,000 / 1,000) from the MNIST and Fashion-MNIST
copies under ``/work/shared/datasets`` with a fixed seed, and writes byte-identical files on
every run (fixed zip timestamps, no pickle). Usage::

    python scripts/build_sample.py [--shared /work/shared/datasets] [--out datasets/sample]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
from batscope.datasets.idx import read_idx

REPO = Path(__file__).resolve().parents[1]

SEED = 20221206
PER_CLASS = {"train": 200, "test": 100}
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SOURCES = {
    "mnist": {
        "folder": "mnist",
        "note": "Official MNIST content (re-compressed copy); the official train/test split.",
    },
    "fashion-mnist": {
        "folder": "fashion-mnist-unofficial-split",
        "note": (
            "UNOFFICIAL train/test split of Fashion-MNIST: fine for a demo, never for a "
            "reported accuracy (not comparable with the paper or the official test set)."
        ),
    },
}


def select(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of every class, returned in ascending order."""
    picks = []
    for c in range(int(labels.max()) + 1):
        idx = np.flatnonzero(labels == c)
        if idx.size < per_class:
            raise ValueError(f"class {c} has only {idx.size} samples")
        picks.append(rng.choice(idx, per_class, replace=False))
    return np.sort(np.concatenate(picks))


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A compressed ``.npz`` with fixed timestamps, so the bytes are reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arr), allow_pickle=False)
            z.writestr(info, npy.getvalue(), compresslevel=9)
    return buf.getvalue()


def build(shared: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {
        "description": (
            "batscope embedded sample: class-balanced subsets for offline demos. "
            "Images uint8 [N, 28, 28], labels uint8, source_index = row in the source file."
        ),
        "seed": SEED,
        "per_class": PER_CLASS,
        "builder": "scripts/build_sample.py",
        "datasets": {},
        "files": {},
    }
    for name, src in SOURCES.items():
        folder = shared / src["folder"]
        entry = {"source_folder": f"/work/shared/datasets/{src['folder']}", "note": src["note"]}
        entry["source_files"] = {}
        for split, (img_f, lab_f) in FILES.items():
            images = read_idx(folder / img_f, expect_ndim=3)
            labels = read_idx(folder / lab_f, expect_ndim=1)
            for f, arr in ((img_f, images), (lab_f, labels)):
                entry["source_files"][f] = {
                    "array_sha256": hashlib.sha256(arr.tobytes()).hexdigest()
                }
            # one generator per (dataset, split): independent of build order
            rng = np.random.default_rng([SEED, list(SOURCES).index(name), int(split == "test")])
            idx = select(labels, PER_CLASS[split], rng)
            arrays = {
                "images": images[idx].astype(np.uint8),
                "labels": labels[idx].astype(np.uint8),
                "source_index": idx.astype(np.int32),
            }
            data = npz_bytes(arrays)
            fname = f"{name}_{split}.npz"
            (out / fname).write_bytes(data)
            manifest["files"][fname] = {
                "dataset": name,
                "split": split,
                "n": int(idx.size),
                "class_counts": np.bincount(arrays["labels"]).tolist(),
                "sha256": hashlib.sha256(data).hexdigest(),
                "images_sha256": hashlib.sha256(arrays["images"].tobytes()).hexdigest(),
                "labels_sha256": hashlib.sha256(arrays["labels"].tobytes()).hexdigest(),
                "bytes": len(data),
            }
        manifest["datasets"][name] = entry
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    return manifest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("/work/shared/datasets"))
    ap.add_argument("--out", type=Path, default=REPO / "datasets" / "sample")
    args = ap.parse_args(argv)
    m = build(args.shared, args.out)
    total = sum(f["bytes"] for f in m["files"].values())
    print(f"wrote {len(m['files'])} files, {total / 1e6:.2f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
