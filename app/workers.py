"""The serving processes behind ``batscope serve --workers N`` (``app/front.py`` is the front).

Each is the same ``panel serve`` as a one-process server, listening on 127.0.0.1 only. Together
they keep one server's limits: they share a private folder (``BATSCOPE_SHARED_DIR``) that holds
the training slots (``engine/process_locks.py``) and the memory ledger
(``training/resources.py``), so that at most ``BATSCOPE_MAX_TRAININGS`` trainings run at once in
all of them and their reservations stay within one ``BATSCOPE_MEMORY_BUDGET``. A process that
exits is started again (its participants' sessions are lost with it: their pages must reload);
one that keeps exiting stops the server. Their output is passed on, each line marked with the
process's number.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from batscope.engine.process_locks import SHARED_DIR_ENV, fcntl

MAX_WORKERS = 64
RESTARTS = 3  # a process that exits this many times ...
RESTART_WINDOW_S = 300.0  # ... within this many seconds stops the server


def check_workers(n: int) -> None:
    """Refuse a number of serving processes this machine cannot run together."""
    if not 1 <= n <= MAX_WORKERS:
        raise ValueError(f"--workers must be between 1 and {MAX_WORKERS}, got {n}")
    if n > 1 and fcntl is None:
        raise ValueError("--workers needs POSIX file locks (Linux, macOS): serve one process here")


def worker_env(env: dict, folder: str) -> dict:
    """A serving process's environment: the server's, and the folder the processes share."""
    return {**env, SHARED_DIR_ENV: folder}


def free_port(address: str = "127.0.0.1") -> int:
    """A port free on ``address`` now (chosen before a server starts, so that what must name it,
    its allowed websocket origins or the front, can)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class Worker:
    """One serving process: its number, port and process."""

    def __init__(self, index: int, port: int, proc: subprocess.Popen):
        self.index, self.port, self.proc = index, port, proc
        self.exits: list[float] = []  # when it exited, for the restart limit


class WorkerPool:
    """Starts ``n`` serving processes (``command(port)`` with ``envs[k]``), restarts one that
    exits, stops them all."""

    def __init__(
        self,
        command: Callable[[int], list[str]],
        envs: list[dict],
        out=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._command, self._envs = command, envs
        self._out = out if out is not None else sys.stdout
        self._clock = clock
        self._write = threading.Lock()
        self.workers: list[Worker] = []

    def start(self) -> None:
        for k in range(len(self._envs)):
            self.workers.append(Worker(k, 0, None))
            self._launch(self.workers[k])

    def _launch(self, worker: Worker) -> None:
        worker.port = free_port()
        worker.proc = subprocess.Popen(
            self._command(worker.port),
            env=self._envs[worker.index],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        threading.Thread(
            target=self._relay, args=(worker.index + 1, worker.proc.stdout), daemon=True
        ).start()

    def _relay(self, number: int, stream) -> None:
        for line in stream:
            with self._write:
                self._out.write(f"[worker {number}] {line}")
                self._out.flush()

    def port_of(self, index: int) -> int:
        return self.workers[index].port

    def wait_listening(self, timeout: float = 600.0) -> None:
        """Return once every process accepts connections; raise if one exits first."""
        end = self._clock() + timeout
        waiting = list(self.workers)
        while waiting:
            for worker in list(waiting):
                if worker.proc.poll() is not None:
                    raise RuntimeError(
                        f"serving process {worker.index + 1} exited with code "
                        f"{worker.proc.returncode} while starting (its output is above)"
                    )
                try:
                    with socket.create_connection(("127.0.0.1", worker.port), timeout=1):
                        waiting.remove(worker)
                except OSError:
                    pass
            if waiting and self._clock() > end:
                raise TimeoutError(f"serving processes not listening after {timeout:.0f} s")
            if waiting:
                time.sleep(0.2)

    def check(self, lost: Callable[[int, int], None] = lambda k, pid: None) -> None:
        """Start again any process that has exited (``lost(k, pid)`` is told first); raise
        ``RuntimeError`` when one has exited ``RESTARTS`` times within ``RESTART_WINDOW_S``."""
        for worker in self.workers:
            if worker.proc.poll() is None:
                continue
            now = self._clock()
            worker.exits = [t for t in worker.exits if t > now - RESTART_WINDOW_S] + [now]
            if len(worker.exits) >= RESTARTS:
                raise RuntimeError(
                    f"serving process {worker.index + 1} exited {len(worker.exits)} times in "
                    f"{RESTART_WINDOW_S:.0f} s (last code {worker.proc.returncode}): stopping"
                )
            with self._write:
                self._out.write(
                    f"batscope: serving process {worker.index + 1} exited with code "
                    f"{worker.proc.returncode}; its participants must reload; starting it again\n"
                )
            lost(worker.index, worker.proc.pid)
            self._launch(worker)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM to every process (each closes its sessions), SIGKILL after ``grace``."""
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.terminate()
        end = self._clock() + grace
        for worker in self.workers:
            if worker.proc is None:
                continue
            try:
                worker.proc.wait(max(0.1, end - self._clock()))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait(10)
