"""Kernel modules by backend name: both expose ``dense_forward`` and ``dense_backward``."""

from __future__ import annotations

import importlib


def get_kernels(backend: str):
    """The kernel module of a resolved backend (``"cpu"`` -> engine.cpu, ``"gpu"`` -> engine.gpu).

    Imported lazily, so importing the engine does not load Numba or CuPy.
    """
    if backend not in ("cpu", "gpu"):
        raise ValueError(f"backend must be 'cpu' or 'gpu', got {backend!r}")
    return importlib.import_module(f"{__package__}.{backend}")
