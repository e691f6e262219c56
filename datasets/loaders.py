"""``load(name, split)``: find, fetch, verify and decode MNIST, Fashion-MNIST and EMNIST.

Where files are looked for, in order:

1. ``data_dir`` if given: the folder itself, its ``<dataset>/`` and ``gzip/`` subfolders. Standard
   names are recognised raw or gzipped (``train-images-idx3-ubyte``, ``...ubyte.gz``, and the
   ``train-images.idx3-ubyte`` spelling); for EMNIST also the official archive ``gzip.zip``.
2. The cache: ``$BATSCOPE_DATA/<dataset>/`` (default ``~/.cache/batscope``).
3. If still missing and ``download=True``: the official sources, into the cache, atomically and
   checked against the pinned hashes before the file appears under its final name.

Every file is verified before use (see :mod:`batscope.datasets.verify`); a file that fails is never
used. EMNIST images are stored transposed in the official files; they are transposed back on load
so that they display upright. EMNIST letters labels (1..26) are shifted to 0..25.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .cache import ENV_VAR, cache_dir
from .download import DownloadError, Opener
from .download import download as _download
from .idx import GZIP_MAGIC, parse_idx
from .registry import KINDS, SPLITS, DatasetSpec, FileSpec, check_split, get_spec, other_dataset
from .shd import load_shd
from .verify import ChecksumError, archive_ok, check_bytes
from .yinyang import load_yinyang


def _folders(spec: DatasetSpec, data_dir) -> list[Path]:
    out: list[Path] = []
    if data_dir is not None:
        d = Path(data_dir).expanduser()
        out += [d, d / spec.subdir, d / "gzip", d / spec.subdir / "gzip"]
    out.append(cache_dir() / spec.subdir)
    seen, uniq = set(), []
    for p in out:
        if p not in seen:
            seen.add(p)
            uniq.append(p)
    return uniq


def _names(fs: FileSpec) -> list[str]:
    dotted = fs.filename.replace("-idx", ".idx")
    return [fs.gz_name, fs.filename, dotted + ".gz", dotted]


def _decompress(stored: bytes, where: str) -> bytes:
    if stored[:2] != GZIP_MAGIC:
        return stored
    try:
        return gzip.decompress(stored)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{where}: corrupt or truncated gzip stream ({exc})") from exc


def _from_file(path: Path, fs: FileSpec, verify: bool) -> np.ndarray:
    stored = path.read_bytes()
    content = _decompress(stored, str(path))
    check_bytes(stored, content, fs, str(path), verify=verify)
    return parse_idx(content, str(path))


def _from_archive(path: Path, spec: DatasetSpec, fs: FileSpec, verify: bool) -> np.ndarray:
    arc = spec.archive
    trusted = archive_ok(path, arc.md5, arc.sha256)
    if verify and not trusted and not fs.has_hash:
        raise ChecksumError(f"{path}: archive does not match its pinned checksum; not used")
    where = f"{path}!{fs.member}"
    try:
        with zipfile.ZipFile(path) as z:
            stored = z.read(fs.member)
    except KeyError as exc:
        raise ValueError(f"{path}: archive has no member {fs.member}") from exc
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ValueError(f"{path}: corrupt or truncated zip archive ({exc})") from exc
    content = _decompress(stored, where)
    check_bytes(stored, content, fs, where, verify, trusted_source=path.name if trusted else None)
    return parse_idx(content, where)


def _locate(spec: DatasetSpec, fs: FileSpec, folders: list[Path]):
    """First existing ``('file', path)`` or ``('archive', path)`` for one file, else None."""
    for folder in folders:
        for name in _names(fs):
            p = folder / name
            if p.is_file():
                return "file", p
    if spec.archive is not None and fs.member is not None:
        for folder in folders:
            p = folder / spec.archive.filename
            if p.is_file():
                return "archive", p
    return None


def files_present(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """True when both splits' files of ``name`` are found in ``data_dir`` or the cache (nothing
    is read: :func:`load` still checks their hashes)."""
    spec = get_spec(name)
    folders = _folders(spec, data_dir)
    return all(
        _locate(spec, spec.file(split, kind), folders) is not None
        for split in SPLITS
        for kind in KINDS
    )


def _missing_message(spec, split, missing: list[FileSpec], folders, extra: str = "") -> str:
    names = ", ".join(fs.gz_name for fs in missing)
    where = "\n  ".join(str(f) for f in folders)
    if spec.archive is not None:
        src = (
            f"the official archive {spec.archive.filename} ({spec.archive.size_hint}) from "
            f"{spec.archive.urls[0]} (or the .gz files it holds under gzip/)"
        )
    else:
        src = f"the official .gz files from {spec.mirrors[0]}"
    cache = cache_dir() / spec.subdir
    msg = (
        f"{spec.name} {split} split not found: missing {names}.\nSearched:\n  {where}\n"
        f"To use it offline, download {src} on a connected machine and put them in {cache} "
        f"(or set ${ENV_VAR}, or pass data_dir=...). Raw or gzipped IDX files both work."
    )
    return msg + (f"\n{extra}" if extra else "")


def _fetch(spec, fs: FileSpec, opener, base_url, progress) -> tuple[str, Path]:
    """Download one file (or the dataset's archive) into the cache; return its source."""
    dest_dir = cache_dir() / spec.subdir
    errors = []
    if spec.archive is not None:
        arc = spec.archive
        urls = [base_url.rstrip("/") + "/" + arc.filename] if base_url else list(arc.urls)
        dest = dest_dir / arc.filename

        def check(tmp: Path) -> None:
            if not archive_ok(tmp, arc.md5, arc.sha256):
                raise ChecksumError(f"download of {arc.filename} does not match its pinned hash")

    else:
        bases = [base_url] if base_url else list(spec.mirrors)
        urls = [b.rstrip("/") + "/" + fs.gz_name for b in bases]
        dest = dest_dir / fs.gz_name

        def check(tmp: Path) -> None:
            stored = tmp.read_bytes()
            check_bytes(stored, _decompress(stored, str(tmp)), fs, f"download of {fs.gz_name}")

    for url in urls:
        try:
            _download(url, dest, check=check, opener=opener, progress=progress)
            return ("archive" if spec.archive is not None else "file"), dest
        except (DownloadError, ChecksumError, ValueError) as exc:
            errors.append(f"{url}: {exc}")
    raise DownloadError("; ".join(errors))


def _load_array(spec, fs, kind, src, verify) -> np.ndarray:
    how, path = src
    arr = (
        _from_archive(path, spec, fs, verify) if how == "archive" else _from_file(path, fs, verify)
    )
    want = (3, np.uint8) if kind == "images" else (1, np.uint8)
    if arr.ndim != want[0] or arr.dtype != want[1]:
        raise ValueError(
            f"{path}: expected {kind} as uint8 with {want[0]} dimensions, got {arr.dtype} "
            f"{arr.shape}"
        )
    return arr


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    verify: bool = True,
    opener: Opener | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Load a dataset split as ``(images uint8 [N, H, W], labels int64 [N])``.

    ``name``: ``"mnist"``, ``"fashion-mnist"``, ``"emnist-balanced"`` (alias ``"emnist"``),
    ``"emnist-letters"`` or ``"emnist-digits"``; ``split``: ``"train"`` or ``"test"``.
    ``"yin-yang"`` returns the generated ``(features float [n, 4], labels)`` of split ``"train"``,
    ``"val"`` or ``"test"`` (datasets/yinyang.py); ``"shd"`` returns ``(SpikeTrains [n, 700, K],
    labels)`` from local files only, and only with ``verify=False`` (datasets/shd.py).
    ``download=False`` never touches the network and raises ``FileNotFoundError`` (naming the
    files and where to put them) if they are missing. ``verify=False`` uses local files that no
    pinned hash vouches for, with a warning; downloads are always checked. ``opener`` and
    ``base_url`` redirect downloads (tests, private mirrors); ``progress`` draws a text bar on
    stderr.
    """
    other = other_dataset(name)
    if other == "yin-yang":
        return load_yinyang(split)
    if other == "shd":
        return load_shd(split, data_dir=data_dir, verify=verify)
    spec = get_spec(name)
    check_split(split)
    folders = _folders(spec, data_dir)
    specs = {k: spec.file(split, k) for k in ("images", "labels")}
    sources = {k: _locate(spec, fs, folders) for k, fs in specs.items()}
    missing = [fs for k, fs in specs.items() if sources[k] is None]
    if missing and not download:
        raise FileNotFoundError(_missing_message(spec, split, missing, folders))
    arrays = {}
    for kind, fs in specs.items():
        src = sources[kind]
        if src is None:
            try:
                src = _fetch(spec, fs, opener, base_url, progress)
            except DownloadError as exc:
                raise FileNotFoundError(
                    _missing_message(spec, split, missing, folders, f"Download failed: {exc}")
                ) from exc
            if spec.archive is not None:  # the archive holds the other file too
                sources = {k: sources[k] or src for k in sources}
        arrays[kind] = _load_array(spec, fs, kind, src, verify)
    images, labels = arrays["images"], arrays["labels"]
    if len(images) != len(labels):
        raise ValueError(f"{spec.name} {split}: {len(images)} images but {len(labels)} labels")
    if spec.transpose:
        images = np.ascontiguousarray(images.transpose(0, 2, 1))
    labels = labels.astype(np.int64) - spec.label_offset
    if labels.size and (labels.min() < 0 or labels.max() >= spec.n_classes):
        raise ValueError(
            f"{spec.name} {split}: labels outside 0..{spec.n_classes - 1} "
            f"(found {labels.min()}..{labels.max()})"
        )
    return images, labels
