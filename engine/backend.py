"""Backends: array modules, device detection and the ``cpu`` / ``gpu`` / ``auto`` choice.

CuPy is imported lazily and only here; a missing or broken CUDA set-up never breaks import.
"""

from __future__ import annotations

import functools
import sys
import threading
import warnings

import numpy as np

BACKENDS = ("cpu", "gpu", "auto")


_probing = threading.local()


@functools.lru_cache(maxsize=1)
def _cupy_status() -> tuple[object | None, str]:
    """Return ``(cupy module or None, reason)``; the reason says why the GPU is unusable.

    The probe runs the kernels' smoke test, so nothing on the kernels' launch path may ask for
    the status: such a call would re-enter the probe (and, through ``lru_cache``, which keeps
    the first result stored, leave a failure cached behind an "ok"). It raises instead.
    """
    if getattr(_probing, "active", False):
        raise RuntimeError("GPU detection re-entered from the kernels' launch path")
    _probing.active = True
    try:
        return _probe_cupy()
    finally:
        _probing.active = False


def _probe_cupy() -> tuple[object | None, str]:
    try:
        import cupy  # noqa: PLC0415
    except Exception as exc:  # ImportError, or a broken CUDA runtime raising at import
        return None, f"CuPy is not installed or failed to import ({exc.__class__.__name__}: {exc})"
    try:
        n = cupy.cuda.runtime.getDeviceCount()
        if n < 1:
            return None, "CuPy found no CUDA device"
        cupy.cuda.Device(0).use()
        (cupy.arange(4, dtype=cupy.float32) * 2).sum().item()
    except Exception as exc:  # driver missing or too old, no device, ...
        return None, f"CUDA is not usable ({exc.__class__.__name__}: {exc})"
    try:
        from .gpu import smoke_test  # noqa: PLC0415

        smoke_test()  # compiles the engine's kernels (NVRTC) and checks one spike
    except Exception as exc:
        return None, f"the CUDA kernels failed to build or run ({exc.__class__.__name__}: {exc})"
    return cupy, "ok"


def gpu_available() -> bool:
    """True when CuPy imports and a CUDA device runs a trivial kernel."""
    return _cupy_status()[0] is not None


def gpu_status() -> str:
    """A one-line human-readable reason: ``"ok"`` or why the GPU backend is unavailable."""
    return _cupy_status()[1]


def available_backends() -> list[str]:
    """Backends usable on this machine, e.g. ``["cpu"]`` or ``["cpu", "gpu"]``."""
    return ["cpu", "gpu"] if gpu_available() else ["cpu"]


def resolve_backend(name: str) -> str:
    """Map ``"auto"`` to ``"gpu"`` or ``"cpu"``; check ``"gpu"`` is usable."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a string, got {type(name).__name__}")
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "cpu":
        return "cpu"
    if gpu_available():
        return "gpu"
    if name == "gpu":
        raise RuntimeError(
            f"backend='gpu' requested but the GPU is unavailable: {gpu_status()}. "
            "Install the extra with `pip install batscope[gpu]` (CUDA 12) or "
            "`pip install batscope[gpu-cuda13]`, or use backend='cpu'."
        )
    if not gpu_status().startswith("CuPy is not installed"):
        # CuPy is there but CUDA is broken: say so once; a CPU-only install stays quiet.
        _warn_fallback_once(gpu_status())
    return "cpu"


@functools.lru_cache(maxsize=1)
def _warn_fallback_once(reason: str) -> None:
    warnings.warn(
        f"backend='auto': using the CPU because the GPU is unavailable: {reason}",
        RuntimeWarning,
        stacklevel=4,
    )


def array_module(a):
    """``numpy`` or ``cupy``, whichever owns ``a`` (NumPy for anything else)."""
    if type(a).__module__.startswith("cupy"):  # CuPy made ``a``, so it is imported: no probe
        return sys.modules["cupy"]
    return np


def xp_for(backend: str):
    """The array module of a resolved backend name."""
    if backend == "gpu":
        cp = _cupy_status()[0]
        if cp is None:
            raise RuntimeError(f"GPU unavailable: {gpu_status()}")
        return cp
    return np


def to_numpy(a):
    """A NumPy copy/view of a NumPy or CuPy array (scalars pass through)."""
    if type(a).__module__.startswith("cupy"):
        return a.get()
    return np.asarray(a)
