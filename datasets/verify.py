"""Checksums: decide whether the bytes of a data file are the official ones.

A file passes when the SHA-256 of its decompressed content equals the pinned ``sha256``, or,
failing a pinned content hash, when its bytes as stored match the pinned ``gz_sha256`` or
``gz_md5`` of the official ``.gz`` exactly. A pinned content hash that does not match is always a
failure, whatever the compressed digests say.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from .registry import FileSpec


class ChecksumError(ValueError):
    """A data file does not match its pinned hash; it is not used."""


class UnverifiedFileError(ValueError):
    """No pinned hash can vouch for a data file (pass ``verify=False`` to use it anyway)."""


class UnverifiedDataWarning(UserWarning):
    """A data file was used without checksum verification."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """Streaming hex digest of a file's bytes as stored."""
    h = (
        hashlib.new(algorithm, usedforsecurity=False)
        if algorithm == "md5"
        else hashlib.new(algorithm)
    )
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_bytes(
    stored: bytes,
    content: bytes,
    spec: FileSpec,
    where: str,
    verify: bool = True,
    trusted_source: str | None = None,
) -> str:
    """Verify one file given its stored bytes and decompressed content; return how it passed.

    ``trusted_source`` names an already-verified container (a pinned archive) the bytes came out
    of. Raises :class:`ChecksumError` on a mismatch and :class:`UnverifiedFileError` when nothing
    pinned applies (unless ``verify=False``, which only warns).
    """
    if spec.sha256 is not None:
        got = sha256_hex(content)
        if got == spec.sha256:
            return "sha256 of decompressed content"
        if verify:
            raise ChecksumError(
                f"{where}: checksum mismatch for {spec.filename}: decompressed content has "
                f"SHA-256 {got}, expected {spec.sha256}. The file is corrupt or not the "
                f"official one and was not used; delete it and fetch it again."
            )
    else:
        if spec.gz_sha256 is not None and sha256_hex(stored) == spec.gz_sha256:
            return "sha256 of the official .gz"
        if spec.gz_md5 is not None and md5_hex(stored) == spec.gz_md5:
            return "md5 of the official .gz"
        if trusted_source is not None:
            return f"member of verified archive {trusted_source}"
        if verify:
            pinned = [k for k in ("gz_sha256", "gz_md5") if getattr(spec, k)]
            raise UnverifiedFileError(
                f"{where}: cannot verify {spec.filename}: batscope pins no SHA-256 for its "
                f"decompressed content, and the file's bytes do not match the pinned digests of "
                f"the official .gz ({', '.join(pinned) or 'none pinned'}), e.g. because it was "
                f"re-compressed or decompressed. Use the official .gz (or archive) as "
                f"distributed, or pass verify=False to use it at your own risk."
            )
    warnings.warn(
        f"{where}: using {spec.filename} WITHOUT checksum verification (verify=False)",
        UnverifiedDataWarning,
        stacklevel=3,
    )
    return "not verified (verify=False)"


_ARCHIVE_MEMO: dict[tuple, bool] = {}


def archive_ok(path: Path, md5: str | None, sha256: str | None) -> bool:
    """True if an archive matches its pinned MD5/SHA-256 (memoised on path, size and mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, md5, sha256)
    if key not in _ARCHIVE_MEMO:
        ok = False
        if sha256 is not None:
            ok = file_digest(path, "sha256") == sha256
        elif md5 is not None:
            ok = file_digest(path, "md5") == md5
        _ARCHIVE_MEMO[key] = ok
    return _ARCHIVE_MEMO[key]
