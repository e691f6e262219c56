"""Numba's threading layer: OpenMP or TBB, chosen before any parallel kernel runs, never workqueue
(it aborts the process when two trainings run at once); a missing safe layer is a clear error."""

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
from batscope.engine import cpu
from batscope.engine.threads import SAFE_LAYERS, select_threading_layer

# Importing Numba's pool modules is how it loads OpenMP / TBB; a None entry in sys.modules makes
# that import fail, as on a machine without either library.
NO_SAFE_LAYER = (
    "import sys\n"
    "sys.modules['numba.np.ufunc.omppool'] = None\n"
    "sys.modules['numba.np.ufunc.tbbpool'] = None\n"
)


def _python(code: str, **env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_a_safe_layer_runs_the_parallel_kernels():
    t = np.full((2, 3, 1), 0.1)
    cpu.dense_forward(t, np.ones((2, 3), np.int32), np.ones((1, 2, 3)), np.zeros(2, np.int32),
                      0.1, 0.05, 0.05, 3, 1.0)  # fmt: skip
    assert numba.threading_layer() in SAFE_LAYERS
    assert select_threading_layer() == numba.threading_layer()


def test_workqueue_asked_for_is_replaced_by_a_safe_layer():
    proc = _python(
        """
        import numba
        from batscope.engine.threads import select_threading_layer
        print(select_threading_layer(), numba.threading_layer())
        """,
        NUMBA_THREADING_LAYER="workqueue",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    layer, loaded = proc.stdout.split()
    assert layer == loaded and layer in SAFE_LAYERS


def test_no_safe_layer_is_a_clear_error_when_the_engine_starts():
    proc = _python(
        NO_SAFE_LAYER
        + """
from batscope.engine import Dense, Network
Network(3, [Dense(2, 0.1, 0.1)])
"""
    )
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])  # an exception, no abort
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("batscope.engine.threads.ThreadingLayerError: Numba needs a thread-safe")
    assert "none could be loaded" in last and "pip install tbb" in last


def test_a_kernel_already_run_on_workqueue_is_refused():
    proc = _python(
        """
        import numpy as np
        from numba import njit, prange

        @njit(parallel=True)
        def f(a):
            s = 0.0
            for i in prange(a.shape[0]):
                s += a[i]
            return s

        f(np.ones(4))
        from batscope.engine.threads import ThreadingLayerError, select_threading_layer
        try:
            select_threading_layer()
        except ThreadingLayerError as exc:
            print(exc)
        """,
        NUMBA_THREADING_LAYER="workqueue",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Numba is using 'workqueue'" in proc.stdout


def test_two_trainings_at_once_do_not_abort_the_process():
    """The failure the choice prevents: two threads in parallel kernels at the same time."""
    proc = _python(
        """
        import threading
        import numpy as np
        from batscope.engine import Dense, Network, SpikeTrains

        def train(seed):
            net = Network(20, [Dense(30, 0.1, 0.05, n_max=4)], seed=seed)
            rng = np.random.default_rng(seed)
            for _ in range(30):
                inp = SpikeTrains.from_arrays(rng.uniform(0, 0.1, (16, 20, 1)))
                out = net.forward(inp, 0.5)
                net.backward(np.where(np.isfinite(out[-1].times), 1.0, 0.0))

        threads = [threading.Thread(target=train, args=(s,)) for s in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("done")
        """
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.strip() == "done"
