"""What a sweep's workers run: one training run, or one chunk of a Fig. 3 heatmap; both idempotent.

:func:`train_cell` is ``batscope train --resume`` for one run folder: a finished run (its
``summary.json`` beside the same ``config.json``) is returned as it is, an interrupted one resumes
from its last checkpoint (``training.runner``), so a task started again after its worker died
trains each epoch once. :func:`heatmap_chunk` writes its cells to ``chunks/`` atomically and
returns them; a chunk already there is read back instead of trained. Failures come back as a
``status: "error"`` record with the error's text, so one bad cell never stops the others; a run
told to stop (``should_stop``, the app's sweep in this process) comes back as ``"stopped"`` and
resumes from its checkpoint next time.
"""

from __future__ import annotations

import io
import json
import time
import traceback
from pathlib import Path

import numpy as np
from batscope.engine import convergence
from batscope.engine.io import atomic_write_bytes

from .runfolder import RunFolder
from .runner import RunSession, RunStopped
from .sweep_plan import HEATMAP_EXPERIMENTS, engine_config


def error_text(exc: BaseException) -> str:
    """One line: the exception's type and message."""
    return " ".join("".join(traceback.format_exception_only(type(exc), exc)).split())


def _finished(folder: Path, config: dict) -> dict | None:
    try:
        stored = json.loads((folder / "config.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return summary if stored == config else None


def _record(summary: dict, status: str, resumed_from, seconds: float) -> dict:
    final, best = summary["final"], summary["best"]
    return {
        "status": status,
        "final_test_accuracy": final.get("test"),
        "final_train_accuracy": final.get("train"),
        "best_val_accuracy": best["accuracy"] if best.get("split") == "val" else None,
        "best_epoch": best["epoch"],
        "best_test_accuracy": best.get("test_accuracy"),
        "epochs": summary["epochs"],
        "alerts": summary["alerts"],
        "resumed_from": resumed_from,
        "seconds": seconds,
        "error": "",
    }


def finished_run(folder: str, config: dict) -> dict | None:
    """The record of a run already finished in ``folder`` for ``config``, else None."""
    done = _finished(Path(folder), config)
    return None if done is None else _record(done, "done", None, done["train_seconds"])


def train_cell(config: dict, folder: str, data_dir: str | None = None, should_stop=None) -> dict:
    """Train (or resume, or find finished) the run of ``config`` in ``folder``; its record."""
    t0 = time.perf_counter()
    path = Path(folder)
    try:
        done = finished_run(folder, config)
        if done is not None:
            return done
        session = RunSession(config, path, data_dir=data_dir, say=lambda text: None, bars=False)
        trainer = session.prepare(resume=True)
        resumed_from = trainer.epoch
        summary = session.run(trainer, should_stop=should_stop)
        return _record(summary, "trained", resumed_from, time.perf_counter() - t0)
    except RunStopped:
        return {"status": "stopped", "error": "", "seconds": time.perf_counter() - t0}
    except Exception as exc:  # recorded in the summary table; the sweep goes on
        return {"status": "error", "error": error_text(exc), "seconds": time.perf_counter() - t0}


def _chunk_file(folder: Path, index: int) -> Path:
    return folder / "chunks" / f"chunk-{index:05d}.npz"


def _chunk_record(status, cells, best, first_full, seconds) -> dict:
    return {
        "status": status,
        "cells": cells,
        "best": best,
        "first_full": first_full,
        "seconds": seconds,
    }


def heatmap_chunk(config: dict, folder: str, index: int, cells: np.ndarray) -> dict:
    """Train the heatmap cells ``cells [n, 2]`` (σ index, μ index) of chunk ``index``."""
    t0 = time.perf_counter()
    path = Path(folder)
    file = _chunk_file(path, index)
    try:
        if file.is_file():
            with np.load(file, allow_pickle=False) as z:
                if np.array_equal(z["cells"], cells):
                    best, first_full = z["best"], z["first_full"]
                    return _chunk_record("done", cells, best, first_full, 0.0)
        cfg = engine_config(config, HEATMAP_EXPERIMENTS[config["run"]["experiment"]])
        best, first_full = convergence.train_cells(cfg, cells)
        file.parent.mkdir(parents=True, exist_ok=True)
        RunFolder(path).write_json("config.json", config)
        buf = io.BytesIO()
        np.savez(buf, cells=cells, best=best, first_full=first_full)
        atomic_write_bytes(file, buf.getvalue())
        return _chunk_record("trained", cells, best, first_full, time.perf_counter() - t0)
    except Exception as exc:
        return {"status": "error", "error": error_text(exc), "seconds": time.perf_counter() - t0}


def finished_heatmap(folder: str, config: dict) -> dict | None:
    """The record of a heatmap already assembled in ``folder`` for ``config``, else None."""
    done = _finished(Path(folder), config)
    return None if done is None else {**done, "status": "done", "seconds": 0.0}


def assemble_heatmap(config: dict, folder: str, chunks: list[dict], seconds: float) -> dict:
    """Write the heatmap of a cell from its chunks (``heatmap.csv`` in the reference's format,
    ``result.npz``, ``summary.json``) and return its record."""
    cfg = engine_config(config, HEATMAP_EXPERIMENTS[config["run"]["experiment"]])
    n_std, n_mean = cfg.shape
    best = np.full((n_std, n_mean, cfg.repeats), np.nan)
    first_full = np.full((n_std, n_mean, cfg.repeats), -1, dtype=np.int64)
    for chunk in chunks:
        s_idx, m_idx = chunk["cells"][:, 0], chunk["cells"][:, 1]
        best[s_idx, m_idx] = chunk["best"]
        first_full[s_idx, m_idx] = chunk["first_full"]
    accuracy = best.mean(axis=2)
    result = convergence.SweepResult(
        cfg, accuracy, best, first_full, np.isfinite(accuracy), int(np.isfinite(best).sum())
    )
    path = Path(folder)
    RunFolder(path).write_json("config.json", config)
    result.to_csv(path / "heatmap.csv")
    buf = io.BytesIO()
    np.savez(
        buf,
        means=np.asarray(cfg.means),
        stds=np.asarray(cfg.stds),
        accuracy=accuracy,
        best=best,
        first_full=first_full,
    )
    atomic_write_bytes(path / "result.npz", buf.getvalue())
    summary = {
        "run": str(path),
        "mean_accuracy": float(np.mean(accuracy)),
        "cells": int(accuracy.size),
        "runs": result.runs_done,
        "seconds": seconds,
    }
    RunFolder(path).write_json("summary.json", summary)
    return {**summary, "status": "trained"}
