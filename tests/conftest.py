"""Suite-wide fixtures: the ``gpu`` marker skips without a usable CUDA device; SHD files in the
official layout."""

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def pytest_collection_modifyitems(config, items):
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    from batscope.engine.backend import gpu_available, gpu_status

    if gpu_available():
        return
    skip = pytest.mark.skip(reason=f"no usable CUDA device: {gpu_status()}")
    for item in gpu_items:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder beside the checkout (skips when absent)."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not present")
    return SHARED


def _write_shd(path, n: int, seed: int):
    """``n`` samples of 700 channels in the official SHD layout, label ``i % 20``."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (n,), h5py.vlen_dtype(np.float32))
        u = f.create_dataset("spikes/units", (n,), h5py.vlen_dtype(np.uint16))
        for i in range(n):
            k = int(rng.integers(1500, 2500))  # SHD-like density: a few spikes per channel
            t[i] = np.sort(rng.uniform(0.0, 0.5, k)).astype(np.float32)
            u[i] = rng.integers(0, 700, k).astype(np.uint16)
        f.create_dataset("labels", data=(np.arange(n) % 20).astype(np.uint8))
    return path


@pytest.fixture
def write_shd():
    """``write_shd(path, n, seed)``: a small SHD-like HDF5 file (skips without h5py)."""
    pytest.importorskip("h5py")
    return _write_shd


@pytest.fixture(autouse=True)
def _no_document_left_on_bokehs_curdoc_stack():
    """A callback that raises inside Bokeh's ``patch_curdoc`` leaves its document on Bokeh's
    process-wide stack: every later standalone render in the process then sees that document
    (destroyed with its session). Fail the test that left it, not the ones that meet it."""
    import time

    from bokeh.io import doc as bokeh_doc

    before = len(bokeh_doc._PATCHED_CURDOCS)
    yield
    end = time.monotonic() + 2.0  # a served callback may still be running in its thread
    while len(bokeh_doc._PATCHED_CURDOCS) > before and time.monotonic() < end:
        time.sleep(0.05)
    assert len(bokeh_doc._PATCHED_CURDOCS) <= before, (
        "a Bokeh callback raised and left its document on Bokeh's curdoc stack"
    )
