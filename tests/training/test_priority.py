"""Training workers run at a lower OS priority than the server's event loop (issue 9, item 7)."""

import os
import sys
import threading

import pytest
from batscope.training.priority import WORKER_NICE, lower_thread_priority
from batscope.training.run import TrainingRun

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice: Linux")


def _nice(tid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, tid)


@linux
def test_only_the_calling_thread_is_lowered():
    main = _nice(threading.get_native_id())
    seen = {}

    def worker():
        seen["applied"] = lower_thread_priority()
        seen["nice"] = _nice(threading.get_native_id())

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["applied"] and seen["nice"] == min(main + WORKER_NICE, 19)
    assert _nice(threading.get_native_id()) == main  # the event loop's thread keeps its own


class _Trainer:
    """Records the nice value of the thread it is built on (the worker) and has no batches."""

    finished = True

    def __init__(self, seen):
        seen.append(_nice(threading.get_native_id()))

    def snapshot(self, **kw):
        return None


@linux
def test_a_training_run_lowers_its_worker():
    seen: list[int] = []
    run = TrainingRun(lambda: _Trainer(seen))
    run.start()
    assert run.done.wait(10) and run.error is None, run.error_text
    main = _nice(threading.get_native_id())
    assert seen == [min(main + WORKER_NICE, 19)]
