"""What the serving processes of one server share: its training slots and a lock, as files.

``batscope serve --workers N`` runs N processes that must keep one server's limits together: at
most ``BATSCOPE_MAX_TRAININGS`` trainings at once in all of them, and one memory budget. They
share a private folder (``BATSCOPE_SHARED_DIR``, made by the command). A training slot is one of
``capacity`` files in it, held with an exclusive ``flock``: the kernel gives the lock back when
the process that holds it ends, however it ends, so a crashed process never keeps a slot.
A :class:`SlotFiles` is not thread-safe: its pool's lock guards it. The processes' queues form
one line: each process publishes when its first waiting run joined (a system-wide monotonic
clock), and a process hands a free slot to its own first only when no other process has waited
longer, so that a busy process cannot keep the slots it frees from the others.
:func:`exclusive` is the same lock around a short read-modify-write (the memory ledger,
``training/resources.py``). POSIX only (``fcntl``); a single process needs none of this.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: one serving process, no shared folder
    fcntl = None

SHARED_DIR_ENV = "BATSCOPE_SHARED_DIR"


def shared_dir(environ=None) -> Path | None:
    """The folder this process shares with the server's other processes, or None."""
    value = (os.environ if environ is None else environ).get(SHARED_DIR_ENV, "").strip()
    if not value:
        return None
    if fcntl is None:
        raise RuntimeError(f"{SHARED_DIR_ENV} needs POSIX file locks (fcntl), not available here")
    folder = Path(value)
    if not folder.is_dir():
        raise ValueError(f"{SHARED_DIR_ENV}: {value!r} is not a folder")
    return folder


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (a process of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def publish(folder: Path, name: str, pid: int, value: int | None) -> None:
    """Record ``value`` as process ``pid``'s ``name`` in ``folder`` (written whole: a reader
    never sees half of it); None removes it."""
    path = Path(folder) / f"{name}-{int(pid)}"
    if value is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    tmp = path.with_name(f".{path.name}")
    tmp.write_text(str(int(value)))
    os.replace(tmp, path)


def published_by_others(folder: Path, name: str, pid: int) -> list[int]:
    """The ``name`` values of the live processes other than ``pid`` (a file being replaced, or
    one that is not ours, counts as nothing)."""
    values = []
    for path in Path(folder).glob(f"{name}-*"):
        with contextlib.suppress(OSError, ValueError):
            other = int(path.name.rsplit("-", 1)[1])
            if other != pid and alive(other):
                values.append(int(path.read_text()))
    return values


def forget_process(folder: Path, pid: int) -> None:
    """Remove what process ``pid`` published in ``folder`` (every such file ends in
    ``-<pid>``): it has ended, and its number may be given to another process."""
    for path in Path(folder).glob(f"*-{int(pid)}"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def exclusive(path: Path):
    """Hold an exclusive lock on ``path`` (made if missing) for the ``with`` block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases its lock


class SlotFiles:
    """``capacity`` training slots as lock files in ``folder``, shared by every process that
    uses the same folder. Each file is opened once; a slot is held by locking it (a system call,
    no file opened or closed), and this process's own holds are kept apart so that two of its
    runs never share one slot. ``pid`` names this process's place in the line (a test may give
    two pools of one process different ones)."""

    def __init__(self, folder: Path, capacity: int, pid: int | None = None):
        self.folder = Path(folder)
        self.paths = [self.folder / f"training-slot-{k}.lock" for k in range(capacity)]
        self._fds: list[int | None] = [None] * capacity
        self._mine: set[int] = set()  # slots this process holds
        self.pid = os.getpid() if pid is None else pid

    def publish_head(self, since: int | None) -> None:
        """This process's first waiting run joined at ``since`` (ns), or none waits."""
        publish(self.folder, "queue-head", self.pid, since)

    def first_in_line(self, since: int) -> bool:
        """Whether no other live process has a run waiting since before ``since`` (ns)."""
        return all(t >= since for t in published_by_others(self.folder, "queue-head", self.pid))

    def take(self) -> int | None:
        """A free slot's number, now held, or None when every slot is held."""
        for k, path in enumerate(self.paths):
            if k in self._mine:
                continue
            if self._fds[k] is None:
                self._fds[k] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(self._fds[k], fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            self._mine.add(k)
            return k
        return None

    def give(self, k: int) -> None:
        """Give back slot ``k``."""
        self._mine.discard(k)
        fcntl.flock(self._fds[k], fcntl.LOCK_UN)

    def free(self) -> int:
        """Slots no process holds now (a probe: it may change at once)."""
        held = list(iter(self.take, None))
        for k in held:
            self.give(k)
        return len(held)
