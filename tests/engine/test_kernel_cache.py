"""The disk cache of the CPU kernels follows every source they inline, not only their own file."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import batscope.engine.cpu  # noqa: F401  (stamps the kernels at import)
from batscope.engine import cpu_conv, cpu_dense, cpu_merge, cpu_neuron, cpu_pool
from batscope.engine.kernel_cache import sources_digest

KERNEL = """
import sys
from pathlib import Path

import helper
from numba import njit

from batscope.engine.kernel_cache import stamp_with_sources


@njit(cache=True)
def kernel(x):
    return helper.value(x)


stamp_with_sources([helper, sys.modules[__name__]])
print(kernel(1.0))
"""


def _run(folder, env):
    out = subprocess.run(
        [sys.executable, str(folder / "kern.py")],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_editing_an_inlined_helper_recompiles_the_cached_caller(tmp_path):
    folder = tmp_path / "mod"
    folder.mkdir()
    (folder / "kern.py").write_text(textwrap.dedent(KERNEL))
    helper = folder / "helper.py"
    helper.write_text(
        "from numba import njit\n\n@njit(inline='always')\ndef value(x):\n    return x\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(folder))
    assert _run(folder, env) == "1.0"
    assert list((tmp_path / "cache").rglob("*.nbi")), "the kernel was not cached"
    helper.write_text(
        "from numba import njit\n\n@njit(inline='always')\ndef value(x):\n    return 2.0 * x\n"
    )
    assert _run(folder, env) == "2.0"


def test_every_cpu_kernel_is_keyed_on_all_kernel_sources():
    modules = [cpu_merge, cpu_neuron, cpu_dense, cpu_conv, cpu_pool]
    digest = sources_digest(m.__file__ for m in modules)
    kernels = [
        obj
        for m in modules
        for obj in vars(m).values()
        if getattr(getattr(obj, "_cache", None), "_cache_file", None) is not None
        and obj.py_func.__module__ == m.__name__
    ]
    assert len(kernels) >= 8
    for k in kernels:
        assert k._cache._cache_file._source_stamp[1] == digest, k
