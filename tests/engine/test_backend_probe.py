"""GPU detection on a stand-in CuPy: the probe runs the kernels' smoke test, and code on the
kernels' launch path must never re-enter it.

The first run on a real GPU (an H200) found `bounded_counts` -> `array_module` -> the probe
again, inside the probe's own smoke test: a RecursionError, a failure cached behind the first
caller's "ok", and every later `backend="gpu"` refused.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
from batscope.engine import backend, gpu


class _DeviceArray:
    """An array type that CuPy would own (its module name is CuPy's)."""

    __module__ = "cupy._core.core"


@pytest.fixture
def fake_cupy(monkeypatch):
    runtime = SimpleNamespace(getDeviceCount=lambda: 1)
    device = SimpleNamespace(use=lambda: None)
    cupy = SimpleNamespace(
        cuda=SimpleNamespace(runtime=runtime, Device=lambda i: device),
        arange=np.arange,
        float32=np.float32,
    )
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    backend._cupy_status.cache_clear()
    yield cupy
    backend._cupy_status.cache_clear()


def test_array_module_on_the_launch_path_does_not_re_enter_the_probe(fake_cupy, monkeypatch):
    seen = []

    def smoke_test():  # as the real one: arrays of the device pass through array_module
        seen.append(backend.array_module(_DeviceArray()))

    monkeypatch.setattr(gpu, "smoke_test", smoke_test)
    assert backend.gpu_status() == "ok"
    assert seen == [fake_cupy]  # the smoke test ran once
    assert backend.gpu_status() == "ok"  # the cached result is the same "ok"
    assert backend.xp_for("gpu") is fake_cupy
    assert backend.resolve_backend("auto") == "gpu"


def test_a_status_call_inside_the_probe_fails_clearly(fake_cupy, monkeypatch):
    monkeypatch.setattr(gpu, "smoke_test", lambda: backend.gpu_status())
    assert not backend.gpu_available()
    assert "re-entered" in backend.gpu_status()
    assert "Recursion" not in backend.gpu_status()
    with pytest.raises(RuntimeError, match="re-entered"):
        backend.resolve_backend("gpu")


def test_array_module_of_host_arrays_is_numpy():
    assert backend.array_module(np.zeros(3)) is np
    assert backend.array_module(1.5) is np
