"""Suite-wide fixtures: the ``gpu`` marker skips without a usable CUDA device."""

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
