"""The convergence experiment of paper Fig. 3, batched through the engine (docs/training.md §4).

Every (μ, σ, repeat) run is an independent 4 → 2 network. All runs of a chunk share the batch axis:
weights ``W[R, 2, 4]`` and ``group[b] = b // 2`` map the two patterns of run r to its weights, so
one ``dense_forward`` / ``dense_backward`` call per epoch trains every run, and the kernel's
per-group sum is each run's own gradient. Each run's initial weights come from its own seed,
``SeedSequence(seed, spawn_key=(μ index, σ index, repeat))``, so results do not depend on the
chunking or on the order in which cells are computed.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .backend import resolve_backend, to_numpy, xp_for
from .kernels import get_kernels
from .losses import PREDICT_MODES, SpikeCountClass, TTFSCrossEntropy
from .spikes import SpikeTrains, resolve_dtype

# The task (docs/training.md §4): one spike per input; only the order of inputs 3 and 4 carries the
# class.
PATTERNS = np.array([[0.0, 0.0, 1.0, 2.0], [0.0, 0.0, 2.0, 1.0]])  # [pattern, input] seconds
LABELS = np.array([0, 1])
N_IN, N_OUT = 4, 2
TAU_S, THETA, RESET, T_SIM = 1.0, 1.0, 1.0, 10.0  # τ = 2τs = 2 s, Δθ = θ
GRID = np.arange(0, 2.5, 0.2)  # μ and σ axes of Fig. 3 (13 values each)

# variant -> (spike buffer S, loss, prediction rule): multi-spike counts vs single-spike TTFS
VARIANTS = {
    "multi": (10, lambda: SpikeCountClass(y_true=10, y_false=0)),  # predict argmax count
    "single": (1, lambda: TTFSCrossEntropy(tau_l=0.1)),  # predict argmin first spike
}


@dataclass(frozen=True)
class SweepConfig:
    """A Fig. 3 heatmap: the grid, the training set-up and the seed (docs/training.md §3–§4)."""

    means: tuple = tuple(GRID.tolist())
    stds: tuple = tuple(GRID.tolist())
    repeats: int = 100
    epochs: int = 50
    lr: float = 0.1
    variant: str = "multi"
    tie_mode: str = "reference"
    seed: int = 0
    backend: str = "cpu"
    dtype: str = "float64"

    def __post_init__(self):
        for name in ("means", "stds"):
            vals = np.asarray(getattr(self, name), dtype=np.float64).ravel()
            if vals.size == 0 or not np.isfinite(vals).all():
                raise ValueError(f"{name} must be a non-empty sequence of finite numbers")
            if name == "stds" and (vals < 0).any():
                raise ValueError("stds must be >= 0")
            object.__setattr__(self, name, tuple(vals.tolist()))
        for name in ("repeats", "epochs", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {type(v).__name__}")
            if v < (0 if name == "seed" else 1):
                raise ValueError(f"{name} must be >= {0 if name == 'seed' else 1}, got {v}")
            object.__setattr__(self, name, int(v))
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {tuple(VARIANTS)}, got {self.variant!r}")
        if self.tie_mode not in PREDICT_MODES:
            raise ValueError(f"tie_mode must be one of {PREDICT_MODES}, got {self.tie_mode!r}")
        object.__setattr__(self, "dtype", resolve_dtype(self.dtype).name)
        resolve_backend(self.backend)  # ValueError for an unknown name

    @property
    def shape(self) -> tuple[int, int]:
        """Heatmap shape ``(n_std, n_mean)``: σ is the row (y axis), μ the column (x axis)."""
        return len(self.stds), len(self.means)

    def to_dict(self) -> dict:
        return {**asdict(self), "means": list(self.means), "stds": list(self.stds)}

    @classmethod
    def from_dict(cls, d: dict) -> SweepConfig:
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict, got {type(d).__name__}")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        return cls(**d)


@dataclass
class SweepResult:
    """Heatmap values as fractions in [0, 1]; NaN (or −1 for epochs) marks cells not yet run.

    ``accuracy[s, m]``: mean over repeats of each run's best training accuracy (Fig. 3 colour).
    ``best[s, m, r]``: that per-run best, in {0, 0.5, 1}. ``first_full[s, m, r]``: the first epoch
    whose predictions were all correct (−1 if never). ``done[s, m]``: the cell has been run.
    """

    config: SweepConfig
    accuracy: np.ndarray
    best: np.ndarray
    first_full: np.ndarray
    done: np.ndarray
    runs_done: int = 0
    elapsed_s: float = 0.0

    @classmethod
    def empty(cls, cfg: SweepConfig) -> SweepResult:
        """The result of a sweep of ``cfg`` before any cell ran."""
        n_std, n_mean = cfg.shape
        return cls(
            config=cfg,
            accuracy=np.full((n_std, n_mean), np.nan),
            best=np.full((n_std, n_mean, cfg.repeats), np.nan),
            first_full=np.full((n_std, n_mean, cfg.repeats), -1, dtype=np.int64),
            done=np.zeros((n_std, n_mean), dtype=bool),
        )

    def record(self, cells, best, first_full, elapsed_s: float) -> np.ndarray:
        """Store the runs of ``cells`` [n, 2] of (σ index, μ index) as :func:`train_cells` returns
        them; returns the accuracy of those cells (a copy, for a sweep's ``callback``)."""
        s_idx, m_idx = cells[:, 0], cells[:, 1]
        self.best[s_idx, m_idx] = best
        self.first_full[s_idx, m_idx] = first_full
        self.accuracy[s_idx, m_idx] = best.mean(axis=1)
        self.done[s_idx, m_idx] = True
        self.runs_done += best.size
        self.elapsed_s = elapsed_s
        return self.accuracy[s_idx, m_idx].copy()

    @property
    def complete(self) -> bool:
        return bool(self.done.all())

    def to_csv(self, path) -> None:
        """The reference's CSV (header ``Mean,Std,Accuracy``, σ outer, a blank row after each σ);
        accuracy in percent. Written atomically."""
        path = Path(path)
        lines = ["Mean,Std,Accuracy"]
        for s, std in enumerate(self.config.stds):
            for m, mean in enumerate(self.config.means):
                lines.append(f"{mean:.10g},{std:.10g},{100.0 * self.accuracy[s, m]:.10g}")
            lines.append("")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise


@dataclass
class RunTrace:
    """One run, epoch by epoch (for drill-down). ``weights[e]`` is W during epoch e (E + 1 rows:
    the last is W after the final update); per-epoch arrays come from the predictions made before
    that epoch's update. ``loss[e, p]`` may be +inf (TTFS with a silent label neuron)."""

    mean: float
    std: float
    repeat: int
    weights: np.ndarray  # [E + 1, 2, 4]
    accuracy: np.ndarray  # [E]
    loss: np.ndarray  # [E, 2 patterns]
    predictions: np.ndarray  # [E, 2 patterns]
    counts: np.ndarray  # [E, 2 patterns, 2 outputs]
    times: np.ndarray  # [E, 2 patterns, 2 outputs, S]

    @property
    def best(self) -> float:
        return float(self.accuracy.max())


def initial_weights(cfg: SweepConfig, i_mean: int, i_std: int, repeats) -> np.ndarray:
    """W0 ~ N(μ, σ²) i.i.d., shape [len(repeats), 2, 4], float64; σ = 0 gives exactly μ."""
    z = np.stack(
        [
            np.random.default_rng(
                np.random.SeedSequence(cfg.seed, spawn_key=(i_mean, i_std, int(r)))
            ).standard_normal((N_OUT, N_IN))
            for r in repeats
        ]
    )
    return cfg.means[i_mean] + cfg.stds[i_std] * z


def _train(w0: np.ndarray, cfg: SweepConfig, record: bool = False) -> dict:
    """Train R independent runs from ``w0 [R, 2, 4]`` with plain GD on the mean over both patterns.

    Returns ``best [R]`` and ``first_full [R]``; with ``record`` also per-epoch histories."""
    backend = resolve_backend(cfg.backend)
    xp, k = xp_for(backend), get_kernels(backend)
    dt = resolve_dtype(cfg.dtype)
    n_max, make_loss = VARIANTS[cfg.variant]
    loss_fn = make_loss()
    n_runs = w0.shape[0]
    pre_t = xp.asarray(np.tile(PATTERNS[:, :, None], (n_runs, 1, 1)), dtype=dt)  # [2R, 4, 1]
    pre_c = xp.ones((2 * n_runs, N_IN), dtype=xp.int32)
    labels = xp.asarray(np.tile(LABELS, n_runs))
    group = xp.repeat(xp.arange(n_runs, dtype=xp.int32), 2)  # sample b -> run b // 2
    w = xp.asarray(w0, dtype=dt)
    step = dt.type(cfg.lr / 2.0)  # λ · (1/2): mean over the 2 patterns of the per-run sum
    best = xp.zeros(n_runs, dtype=dt)
    first_full = xp.full(n_runs, -1, dtype=xp.int64)
    hist = {key: [] for key in ("weights", "accuracy", "loss", "predictions", "counts", "times")}
    for epoch in range(cfg.epochs):
        times, counts, udot = k.dense_forward(
            pre_t, pre_c, w, group, TAU_S, THETA, RESET, n_max, T_SIM
        )
        out = SpikeTrains(times, counts)
        pred = loss_fn.predict(out, mode=cfg.tie_mode)  # before this epoch's update
        acc = (pred == labels).reshape(n_runs, 2).mean(axis=1).astype(dt)
        best = xp.maximum(best, acc)
        first_full = xp.where((first_full < 0) & (acc == 1), epoch, first_full)
        loss, phi = loss_fn.loss_and_errors(out, labels)
        _, grad, _ = k.dense_backward(
            pre_t, pre_c, w, group, times, counts, udot, phi, TAU_S, RESET, False
        )
        if record:
            for key, val in (
                ("weights", w),
                ("accuracy", acc),
                ("loss", loss),
                ("predictions", pred),
                ("counts", counts),
                ("times", times),
            ):
                hist[key].append(to_numpy(val).copy())
        w = w - step * grad  # plain GD, λ = cfg.lr (docs/training.md §2)
    result = {"best": to_numpy(best), "first_full": to_numpy(first_full)}
    if record:
        hist["weights"].append(to_numpy(w).copy())
        result.update({key: np.stack(val) for key, val in hist.items()})
    return result


def grid_chunks(cfg: SweepConfig, chunk_cells: int) -> list[np.ndarray]:
    """The grid's cells in chunks of ``chunk_cells``, row by row: each ``[n, 2]`` of
    (σ index, μ index)."""
    n_std, n_mean = cfg.shape
    n_cells = n_std * n_mean
    return [
        np.array([divmod(c, n_mean) for c in range(lo, min(lo + chunk_cells, n_cells))])
        for lo in range(0, n_cells, chunk_cells)
    ]


def train_cells(cfg: SweepConfig, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``best [n, R]`` and ``first_full [n, R]`` of the (σ index, μ index) ``cells [n, 2]``, all
    trained in one batch. Each run's numbers depend only on its own seed, so any split of the grid
    into chunks, computed anywhere, gives the same heatmap as :func:`run_sweep`."""
    cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
    reps = range(cfg.repeats)
    w0 = np.concatenate([initial_weights(cfg, int(m), int(s), reps) for s, m in cells])
    out = _train(w0, cfg)
    shape = (len(cells), cfg.repeats)
    return out["best"].reshape(shape), out["first_full"].reshape(shape)


def run_sweep(
    cfg: SweepConfig,
    chunk_cells: int | None = None,
    callback: Callable[[np.ndarray, np.ndarray], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SweepResult:
    """Run every (σ, μ) cell with ``cfg.repeats`` runs, ``chunk_cells`` cells per batch (default:
    all at once). After each chunk ``callback(cells [n, 2] of (σ index, μ index), accuracy [n])``
    is called; ``should_stop()`` is checked between chunks, and a stopped sweep returns the
    cells done so far (the rest NaN)."""
    if not isinstance(cfg, SweepConfig):
        raise TypeError(f"cfg must be a SweepConfig, got {type(cfg).__name__}")
    n_std, n_mean = cfg.shape
    n_cells = n_std * n_mean
    if chunk_cells is None:
        chunk_cells = n_cells
    if isinstance(chunk_cells, bool) or not isinstance(chunk_cells, int) or chunk_cells < 1:
        raise ValueError(f"chunk_cells must be an integer >= 1, got {chunk_cells!r}")
    res = SweepResult.empty(cfg)
    start = time.perf_counter()
    for cells in grid_chunks(cfg, chunk_cells):
        if should_stop is not None and should_stop():
            break
        best, first_full = train_cells(cfg, cells)
        accuracy = res.record(cells, best, first_full, time.perf_counter() - start)
        if callback is not None:
            callback(cells, accuracy)
    return res


def _grid_index(values: tuple, value: float, name: str) -> int:
    hits = np.flatnonzero(np.isclose(values, value, rtol=0.0, atol=1e-9))
    if hits.size != 1:
        raise ValueError(f"{name}={value} is not on the configured grid {list(values)}")
    return int(hits[0])


def run_single(mean: float, std: float, repeat: int, cfg: SweepConfig) -> RunTrace:
    """Re-run one (μ, σ, repeat) of the sweep with full per-epoch histories; its accuracies are
    identical to that run inside :func:`run_sweep`. ``mean``/``std`` must be grid values."""
    i_mean = _grid_index(cfg.means, mean, "mean")
    i_std = _grid_index(cfg.stds, std, "std")
    if isinstance(repeat, bool) or not isinstance(repeat, (int, np.integer)):
        raise TypeError(f"repeat must be an integer, got {type(repeat).__name__}")
    if not 0 <= repeat < cfg.repeats:
        raise ValueError(f"repeat must be in [0, {cfg.repeats}), got {repeat}")
    out = _train(initial_weights(cfg, i_mean, i_std, [repeat]), cfg, record=True)
    return RunTrace(
        mean=cfg.means[i_mean],
        std=cfg.stds[i_std],
        repeat=int(repeat),
        weights=out["weights"][:, 0],
        accuracy=out["accuracy"][:, 0],
        loss=out["loss"],
        predictions=out["predictions"],
        counts=out["counts"],
        times=out["times"],
    )
