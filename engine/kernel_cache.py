"""Numba's disk cache, keyed on every kernel source file instead of each kernel's own file.

Numba stamps a cached kernel with the modification time and size of the file that defines it.
The CPU kernels inline functions of other files (the neuron core of cpu_neuron.py, the merge of
cpu_merge.py), so after such a file changes, a caller's cached machine code would still load:
stale results with no error. :func:`stamp_with_sources` adds a digest of all the given source
files to the stamp of every cached kernel in the given modules, so any edit of any of them
recompiles every kernel once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)


def sources_digest(paths: Iterable[Path]) -> str:
    """SHA-256 over the names and contents of ``paths`` (sorted, so the order does not matter)."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _cache_file(dispatcher):
    """The index file object of a cached Numba dispatcher, or None when it has no disk cache."""
    return getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)


def stamp_with_sources(modules: Iterable[ModuleType]) -> int:
    """Key the disk cache of every cached kernel defined in ``modules`` on all their sources.

    Must run before the kernels' first call (loading from the cache happens then). Returns the
    number of kernels stamped.
    """
    modules = list(modules)
    digest = sources_digest(Path(m.__file__) for m in modules)
    stamped = 0
    for module in modules:
        for obj in vars(module).values():
            cache_file = _cache_file(obj)
            defined_here = getattr(getattr(obj, "py_func", None), "__module__", None)
            if cache_file is None or defined_here != module.__name__:
                continue
            cache_file._source_stamp = (cache_file._source_stamp, digest)
            stamped += 1
    if stamped == 0:
        log.warning("no cached Numba kernel found to stamp: is Numba's cache layout different?")
    return stamped
