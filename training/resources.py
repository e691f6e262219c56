"""The server's memory budget: work reserves its estimated peak memory before it allocates.

A room of participants shares one server, so a run, a sweep, a gradient check or a model load
first asks :class:`MemoryBroker` for its peak memory (estimated from the shapes alone by
``engine.memory``) and is refused, with a message saying how much it asked and what would fit,
when it exceeds

- the **session budget** (``BATSCOPE_SESSION_MEMORY_BUDGET``; by default the server budget
  divided by ``BATSCOPE_MAX_TRAININGS``, so that as many sessions as may train at once each fit),
  counting what the session has reserved already, or
- what is left of the **server budget** (``BATSCOPE_MEMORY_BUDGET``; by default half of the
  machine's physical memory) beside the reservations of every running session.

Both take bytes or a size with a unit (``2GB``, ``1.5GiB``, ``800M``; see
``engine.memory.parse_bytes``). A :class:`Reservation` is released by whoever ends the work: the
training or sweep worker when it ends, however it ends (finished, stopped, failed, session
destroyed), or a ``with`` block around a synchronous check; release is idempotent.

With ``BATSCOPE_SHARED_DIR`` (``batscope serve --workers``) the server's processes share one
budget through a :class:`ServerLedger` in that folder: each process publishes what it holds, and
a reservation counts what the others hold, under a lock that every process takes for it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from pathlib import Path

from batscope.engine.memory import (
    MemoryEstimate,
    estimate_network_memory,
    estimate_sweep_memory,
    format_bytes,
    layer_footprint,
    parse_bytes,
)
from batscope.engine.process_locks import exclusive, publish, published_by_others, shared_dir

SERVER_BUDGET_ENV = "BATSCOPE_MEMORY_BUDGET"
SESSION_BUDGET_ENV = "BATSCOPE_SESSION_MEMORY_BUDGET"
DEFAULT_SERVER_SHARE = 0.5  # of the machine's physical memory
FALLBACK_PHYSICAL = 4 * 10**9  # when the platform does not say how much memory it has
EVAL_BATCH = 100  # training.evaluation.EVAL_BATCH: the evaluation forward's batch
EVAL_CAP = 1000  # training.trainer.EVAL_CAP: test samples kept encoded


class BudgetRefused(ValueError):
    """A request that does not fit; ``str()`` is the message shown to the participant."""


def physical_memory() -> int:
    """Bytes of physical memory of this machine (``FALLBACK_PHYSICAL`` if unknown)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_PHYSICAL


def _env_bytes(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return None
    try:
        n = parse_bytes(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if n < 1:
        raise ValueError(f"{name} must be at least 1 byte, got {value!r}")
    return n


def server_budget() -> int:
    """``BATSCOPE_MEMORY_BUDGET``, else half of the machine's physical memory."""
    n = _env_bytes(SERVER_BUDGET_ENV)
    return n if n is not None else int(physical_memory() * DEFAULT_SERVER_SHARE)


def session_budget(server: int) -> int:
    """``BATSCOPE_SESSION_MEMORY_BUDGET``, else ``server`` / ``BATSCOPE_MAX_TRAININGS``."""
    n = _env_bytes(SESSION_BUDGET_ENV)
    if n is not None:
        return n
    from batscope.engine.slots import TRAINING_SLOTS

    return server // TRAINING_SLOTS.capacity


class Reservation:
    """Bytes held in a :class:`MemoryBroker` until :meth:`release` (idempotent; also a
    context manager)."""

    def __init__(self, broker: MemoryBroker, account: SessionAccount, nbytes: int, what: str):
        self._broker, self.account, self.nbytes, self.what = broker, account, nbytes, what
        self.released = False

    def release(self) -> None:
        self._broker._release(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class ServerLedger:
    """The bytes each of a server's processes holds, as one small file per process in a shared
    folder; a process that has ended holds nothing, whatever its file says."""

    def __init__(self, folder: Path, pid: int | None = None):
        self.folder = Path(folder)
        self.pid = os.getpid() if pid is None else pid
        self._lock = self.folder / "memory-ledger.lock"

    def locked(self):
        """The ledger's lock, held around a read of the others and a publish of our own."""
        return exclusive(self._lock)

    def others(self) -> int:
        """Bytes held now by the server's other live processes."""
        return sum(published_by_others(self.folder, "memory-held", self.pid))

    def publish(self, nbytes: int) -> None:
        """Record that this process holds ``nbytes``."""
        publish(self.folder, "memory-held", self.pid, nbytes)


class MemoryBroker:
    """Reservations of every session against the server's and each session's budget
    (``ledger``: the server's budget shared with its other processes)."""

    def __init__(self, budget: int, per_session: int, ledger: ServerLedger | None = None):
        if budget < 1 or per_session < 1:
            raise ValueError(f"budgets must be >= 1 byte, got {budget} and {per_session}")
        self.budget, self.per_session = int(budget), int(per_session)
        self._ledger = ledger
        self._lock = threading.Lock()
        self._held: set[Reservation] = set()

    def _shared(self):
        return self._ledger.locked() if self._ledger is not None else contextlib.nullcontext()

    @property
    def used(self) -> int:
        with self._lock:
            return sum(r.nbytes for r in self._held)

    def used_by(self, account: SessionAccount) -> int:
        with self._lock:
            return sum(r.nbytes for r in self._held if r.account is account)

    def reserve(
        self,
        account: SessionAccount,
        nbytes: int,
        what: str,
        hint: str = "",
        replaces: Reservation | None = None,
    ) -> Reservation:
        """Reserve ``nbytes`` for ``what`` ("this run") or raise :class:`BudgetRefused`.

        ``replaces`` is work of the same session that is being stopped and ends before the new
        work allocates (a restarted sweep): its bytes do not count against the new request.
        ``hint`` ends the refusal ("lower the batch or the spike buffer").
        """
        nbytes = int(nbytes)
        if nbytes < 0:
            raise ValueError(f"nbytes must be >= 0, got {nbytes}")
        with self._lock, self._shared():
            others = [r for r in self._held if r is not replaces]
            mine = sum(r.nbytes for r in others if r.account is account)
            elsewhere = self._ledger.others() if self._ledger is not None else 0
            free_server = max(0, self.budget - elsewhere - sum(r.nbytes for r in others))
            free_session = max(0, self.per_session - mine)
            if nbytes > min(free_server, free_session):
                raise BudgetRefused(
                    self._refusal(what, nbytes, mine, free_server, free_session, hint)
                )
            r = Reservation(self, account, nbytes, what)
            self._held.add(r)
            self._publish()
            return r

    def _publish(self) -> None:  # caller holds both locks
        if self._ledger is not None:
            self._ledger.publish(sum(r.nbytes for r in self._held))

    def _refusal(self, what, nbytes, mine, free_server, free_session, hint) -> str:
        asked = f"{what} needs {format_bytes(nbytes)}"
        if nbytes > self.per_session:
            why = f"a session may use at most {format_bytes(self.per_session)}"
        elif free_session < free_server:
            why = (
                f"this session already holds {format_bytes(mine)} of its "
                f"{format_bytes(self.per_session)} budget: stop its other work first"
            )
        elif nbytes > self.budget:
            why = f"the server's whole budget is {format_bytes(self.budget)}"
        else:
            why = (
                f"{format_bytes(free_server)} is free of the server's "
                f"{format_bytes(self.budget)} budget while other runs go: wait for them"
            )
        return f"{asked[0].upper()}{asked[1:]}; {why}" + (f", or {hint}." if hint else ".")

    def _release(self, r: Reservation) -> None:
        with self._lock, self._shared():
            self._held.discard(r)
            r.released = True
            self._publish()


@functools.cache
def default_broker() -> MemoryBroker:
    """The process's broker, from the environment (read once, at the first reservation)."""
    budget, folder = server_budget(), shared_dir()
    ledger = None if folder is None else ServerLedger(folder)
    return MemoryBroker(budget, session_budget(budget), ledger)


class SessionAccount:
    """One session's side of the broker: what its controllers reserve is counted together."""

    def __init__(self, broker: MemoryBroker | None = None):
        self.broker = broker if broker is not None else default_broker()

    @property
    def used(self) -> int:
        return self.broker.used_by(self)

    def reserve(
        self,
        estimate: MemoryEstimate | int,
        what: str,
        hint: str = "",
        replaces: Reservation | None = None,
    ) -> Reservation:
        nbytes = estimate.total if isinstance(estimate, MemoryEstimate) else estimate
        return self.broker.reserve(self, nbytes, what, hint, replaces)


# ---- estimates of the app's work ---------------------------------------------------------------
RUN_HINT = "lower the batch size, the layer sizes or the spike buffers S"
SWEEP_HINT = "lower the repeats or coarsen the grid step"
CHECK_HINT = "check fewer samples"
MODEL_HINT = "load a smaller model"
MODEL_COPIES = 4  # the weights read from the zip, the loaded network, its weights, the run's copy


def _engine_layers(config: dict, n_inputs: int) -> tuple[tuple, list]:
    """``(input shape, engine layers)`` of a run configuration (training/netbuild.py)."""
    from batscope.training.netbuild import engine_layers, network_input_shape

    return network_input_shape(config, n_inputs), engine_layers(config["network"])


@functools.cache
def _toy_inputs(task: str) -> tuple[int, int, int]:
    """``(patterns, inputs, slots)`` of a toy task's input spike trains."""
    from batscope.datasets.toy import toy_task

    times = toy_task(task).inputs.numpy().times
    return times.shape


def _sample_size(task: str, split: str) -> int | None:
    """Samples in the embedded sample of ``task`` (None for a dataset read from files)."""
    from batscope.datasets.sample import SAMPLE_NAMES, sample_filename, sample_manifest

    if task not in SAMPLE_NAMES:
        return None
    return int(sample_manifest()["files"][sample_filename(task, split)]["n"])


def _full_set(training: dict) -> str | None:
    """The dataset a run reads from files (a full set, EMNIST), or None (sample, toy task)."""
    from batscope.training.trainer import IMAGE_TASKS

    task = training["task"]
    if task == "emnist" or (task in IMAGE_TASKS and training.get("data") == "full"):
        return IMAGE_TASKS[task]
    return None


def _set_size(training: dict, split: str) -> int | None:
    """Samples in ``split`` of what a run reads: the full set's, or the embedded sample's."""
    from batscope.datasets.registry import get_spec

    name = _full_set(training)
    return get_spec(name).counts[split] if name else _sample_size(training["task"], split)


def _image_bytes(training: dict) -> int:
    """The official files' images and labels held while a full set is encoded (uint8 pixels,
    int64 labels), 0 for the embedded sample."""
    from batscope.datasets.registry import get_spec

    name = _full_set(training)
    if name is None:
        return 0
    spec = get_spec(name)
    return sum(spec.counts.values()) * (28 * 28 + 8)


def _task_inputs(training: dict) -> tuple[int, int, int, int, int]:
    """``(inputs, slots, samples kept, training batch, evaluation batch)`` of a run's task."""
    from batscope.training.state import EVENT_TASKS, IMAGE_TASKS, task_shape

    task = training["task"]
    if task in EVENT_TASKS:
        return _event_inputs(training)
    if task not in IMAGE_TASKS:
        n_data, n_inputs, slots = _toy_inputs(task)
        return n_inputs, slots, n_data, n_data, n_data
    n_test = min(EVAL_CAP, _set_size(training, "test") or EVAL_CAP)
    n_train = int(training.get("n_train", 1000))
    n_train = min(n_train, _set_size(training, "train") or n_train)
    batch = min(int(training["batch_size"]), n_train)
    # the encoded set and its training part (a copy), then the test set
    n_data = 2 * n_train + n_test
    return task_shape(task)[0], 1, n_data, batch, min(EVAL_BATCH, max(n_train, n_test))


def _event_inputs(training: dict) -> tuple[int, int, int, int, int]:
    """:func:`_task_inputs` of Yin-Yang (its three generated splits, one spike per input) or
    SHD (the files' samples and most spikes of a channel; training/eventdata.py)."""
    from batscope.datasets.yinyang import SPLIT_SIZES
    from batscope.training.eventdata import shd_extent
    from batscope.training.serversettings import data_dir
    from batscope.training.state import task_shape

    n_inputs = task_shape(training["task"])[0]
    if training["task"] == "yin-yang":
        n_train, n_data, slots = SPLIT_SIZES["train"], sum(SPLIT_SIZES.values()), 1
    else:
        try:
            folder = data_dir()  # the server's data folder, then the cache
            (n_file, k_train), (n_test, k_test) = (
                shd_extent("train", folder),
                shd_extent("test", folder),
            )
        except (FileNotFoundError, ImportError) as exc:  # no estimate: the sidebar says why
            raise ValueError(str(exc)) from None
        n_train, slots = min(int(training.get("n_train", n_file)), n_file), max(k_train, k_test)
        n_data = n_file + n_train + n_test  # the split as read, its kept part, the test split
    batch = min(int(training["batch_size"]), n_train)
    return n_inputs, slots, n_data, batch, min(EVAL_BATCH, n_train)


def _with_parts(estimate: MemoryEstimate, **extra: int) -> MemoryEstimate:
    parts = dict(estimate.parts)
    for name, nbytes in extra.items():
        parts[name] = parts.get(name, 0) + nbytes
    return MemoryEstimate(total=sum(parts.values()), parts=parts)


def _data_bytes(n_data: int, n_inputs: int, slots: int, dtype) -> int:
    from batscope.engine.spikes import resolve_dtype

    return n_data * n_inputs * (slots * resolve_dtype(dtype).itemsize + 4)  # times, counts


def training_estimate(config: dict) -> MemoryEstimate:
    """Peak memory of a ``Trainer`` of the run configuration ``config``: the larger of a
    training step and an evaluation forward, plus the encoded data it keeps."""
    tr = config["training"]
    dtype = tr.get("dtype", "float64")
    n_inputs, slots, n_data, batch, eval_batch = _task_inputs(tr)
    shape, layers = _engine_layers(config, n_inputs)
    optimizer = "adam" if tr.get("optimizer", "adam") == "adam" else "sgd"
    train = estimate_network_memory(shape, layers, batch, dtype, slots, True, optimizer)
    forward = estimate_network_memory(shape, layers, eval_batch, dtype, slots, False)
    peak = train if train.total >= forward.total else forward
    data = _data_bytes(n_data, n_inputs, slots, dtype)
    return _with_parts(peak, data=data, images=_image_bytes(tr))


def check_estimate(config: dict, batch: int) -> MemoryEstimate:
    """Peak memory of a gradient check of ``config`` 's network on ``batch`` samples: a float64
    forward and backward, the task's data (float64), and two more copies of the weights (the
    session's network and the check's private copy)."""
    tr = config["training"]
    n_inputs, slots, n_data, _, _ = _task_inputs(tr)
    shape, layers = _engine_layers(config, n_inputs)
    est = estimate_network_memory(shape, layers, batch, "float64", slots, True, "sgd")
    weights = 8 * sum(
        layer_footprint(x, s).weights for x, s in zip(layers, _shapes(shape, layers), strict=True)
    )
    return _with_parts(
        est, data=_data_bytes(n_data, n_inputs, slots, "float64"), weights=2 * weights
    )


def sweep_estimate(configs, chunk_cells: int) -> MemoryEstimate:
    """Peak memory of a convergence sweep: its variants run one after the other, so the
    largest of ``engine.convergence.SweepConfig`` s ``configs``."""
    estimates = [estimate_sweep_memory(c, chunk_cells) for c in configs]
    return max(estimates, key=lambda e: e.total)


def _shapes(shape: tuple, layers) -> list[tuple]:
    """Each layer's input shape."""
    out = []
    for layer in layers:
        out.append(shape)
        shape = layer.output_shape(shape)
    return out


def model_estimate(input_shape, specs) -> MemoryEstimate:
    """Peak memory of loading a model of ``LayerSpec`` s ``specs`` fed by ``input_shape``
    (float64 weights, ``MODEL_COPIES`` copies of them at once)."""
    from batscope.training.state import layer_weights

    weights = 8 * sum(layer_weights(specs, tuple(input_shape)))
    return MemoryEstimate(total=MODEL_COPIES * weights, parts={"weights": MODEL_COPIES * weights})
