"""Worker threads yield the CPU to the server's event loop.

On a small machine serving a room, a few trainings (and their OpenMP teams) would otherwise
share the cores equally with the thread that answers every participant's page. Linux gives
each thread its own nice value, and the threads it starts later (the OpenMP team of its first
parallel kernel) inherit it, so a worker lowers its own priority when it starts. Elsewhere
(``setpriority`` on another OS means the whole process) nothing is changed.
"""

from __future__ import annotations

import os
import sys
import threading

WORKER_NICE = 10  # added to the worker's nice value (capped at 19, the lowest priority)


def lower_thread_priority(increment: int = WORKER_NICE) -> bool:
    """Raise the calling thread's nice value by ``increment``; True if it was changed."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        nice = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(nice + increment, 19))
    except OSError:  # not permitted here (a sandbox): the worker runs at the usual priority
        return False
    return True
