"""Numba's threading layer, chosen explicitly: OpenMP, else TBB, never workqueue.

Numba falls back to its workqueue layer when neither OpenMP nor TBB loads, and that layer aborts
the whole process when two threads enter parallel kernels at once (two trainings of the app).
:func:`select_threading_layer` loads a safe layer before the first parallel kernel runs, and
raises a clear error at start when none is available. engine/cpu.py and engine/optim_kernels.py
call it when they are imported; a server calls it at start-up to fail before serving.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import njit, prange

SAFE_LAYERS = ("omp", "tbb")  # in order of preference: OpenMP, then TBB


class ThreadingLayerError(RuntimeError):
    """No thread-safe Numba threading layer (OpenMP or TBB) could be loaded."""


@njit(parallel=True, nogil=True, cache=True)
def _warm_up(a):
    """A tiny parallel kernel: its first launch (compiled or cached) loads the threading layer."""
    s = 0.0
    for i in prange(a.shape[0]):
        s += a[i]
    return s


@functools.cache
def select_threading_layer() -> str:
    """Load OpenMP (else TBB) as Numba's threading layer and return its name.

    An explicit ``NUMBA_THREADING_LAYER=omp`` or ``tbb`` is kept; any other setting (the default,
    ``workqueue``, ``threadsafe``, ...) is replaced by this choice. Raises
    :class:`ThreadingLayerError` naming what to install when neither loads, or when a parallel
    kernel already ran on an unsafe layer before this was called.
    """
    requested = str(numba.config.THREADING_LAYER).lower()
    candidates = (requested,) if requested in SAFE_LAYERS else SAFE_LAYERS
    failures = []
    for layer in candidates:
        numba.config.THREADING_LAYER = layer
        try:
            _warm_up(np.ones(4))
        except ValueError as exc:  # Numba: "No threading layer could be loaded"
            failures.append(f"{layer}: {str(exc).splitlines()[0]}")
            continue
        break
    loaded = _loaded_layer()
    if loaded not in SAFE_LAYERS:
        tried = "; ".join(failures) or f"a parallel kernel already ran on the {loaded!r} layer"
        found = "none could be loaded" if loaded == "none" else f"Numba is using {loaded!r}"
        raise ThreadingLayerError(
            f"Numba needs a thread-safe threading layer, OpenMP or TBB, and {found}: the "
            "workqueue layer aborts the process when two trainings run at once. Install one "
            "(`pip install tbb`, or the system's OpenMP runtime, e.g. Debian's libgomp1) and "
            "restart; set NUMBA_THREADING_LAYER=omp or tbb to choose. Tried: " + tried
        )
    return loaded


def _loaded_layer() -> str:
    """The layer Numba has loaded (``"none"`` when no parallel kernel could run)."""
    try:
        return str(numba.threading_layer())
    except ValueError:  # "Threading layer is not initialized."
        return "none"
