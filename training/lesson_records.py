"""What a lesson's goals remember of a run and of a convergence sweep (param only, no Panel).

:class:`RunRecord` and :class:`SweepRecord` take the same batches as the live views
(``update(batch)`` / ``reset()``, fed by the session's pull loop, app-architecture.md §4) and keep
only the few numbers a goal reads: best accuracy per split, epochs done, the reset path's share of
the error (docs/backward.md §7), accuracy at the end of the encoding window (docs/training.md §5),
and the sweep's cells (docs/training.md §4). ``revision`` changes whenever something new arrived.
"""

from __future__ import annotations

import math

import numpy as np
import param

from .telemetry import Snapshot


def reset_share(errors) -> float:
    """Σ|μ| / (Σ|φ| + Σ|μ|) over every layer's error flow (nan when there is no error)."""
    phi = sum(float(np.nansum(np.abs(e.phi[np.isfinite(e.phi)]))) for e in errors)
    mu = sum(float(np.nansum(np.abs(e.mu[np.isfinite(e.mu)]))) for e in errors)
    return mu / (phi + mu) if phi + mu > 0 else math.nan


class RunRecord(param.Parameterized):
    """The last run's numbers a goal reads; :meth:`start` begins a new run's record."""

    revision = param.Integer(0, doc="Incremented whenever the record changes")

    def __init__(self, **params):
        super().__init__(**params)
        self.clear()

    def clear(self) -> None:
        self.config: dict | None = None
        self.best_accuracy: dict[str, float] = {}
        self.epochs_done = 0
        self.reset_share = math.nan
        self.latency_at_t_enc = math.nan  # accuracy (%) at the end of the encoding window

    def start(self, config: dict) -> None:
        """A run with ``config`` was launched: forget the previous run's numbers."""
        self.clear()
        self.config = config
        self.revision += 1

    def update(self, batch: list) -> None:
        for snap in batch:
            if not isinstance(snap, Snapshot):
                continue
            for row in snap.rows:
                acc = 100.0 * row.accuracy
                if math.isfinite(acc) and acc > self.best_accuracy.get(row.split, -1.0):
                    self.best_accuracy[row.split] = acc
            self.epochs_done = max(self.epochs_done, snap.epoch)  # epochs completed
            if snap.errors:
                self.reset_share = reset_share(snap.errors)
            if snap.latency is not None and len(snap.latency.t):
                lat = snap.latency
                i = min(int(np.searchsorted(lat.t, lat.t_enc, side="right")) - 1, len(lat.t) - 1)
                self.latency_at_t_enc = 100.0 * float(lat.accuracy[max(i, 0)])
        if batch:
            self.revision += 1

    def reset(self) -> None:
        """The controller was reset: its run and history are gone."""
        self.clear()
        self.revision += 1


class SweepRecord(param.Parameterized):
    """The latest convergence sweep's cells: variant -> {(μ, σ): accuracy %}."""

    revision = param.Integer(0, doc="Incremented whenever the record changes")

    def __init__(self, **params):
        super().__init__(**params)
        self.clear()

    def clear(self) -> None:
        self.sweep_id = None
        self.cells: dict[str, dict[tuple, float]] = {}
        self.sizes: dict[str, int] = {}
        self.axes: tuple[np.ndarray, np.ndarray] | None = None

    def update(self, batch: list) -> None:
        for item in batch:
            if item.sweep_id != self.sweep_id:
                self.sweep_id, self.cells, self.sizes = item.sweep_id, {}, {}
            self.axes = (np.asarray(item.mu), np.asarray(item.sigma))
            self.sizes[item.variant] = len(item.mu) * len(item.sigma)
            cells = self.cells.setdefault(item.variant, {})
            for i_mu, i_sigma, acc in zip(
                item.mu_index, item.sigma_index, item.accuracy, strict=True
            ):
                cells[self.cell(int(i_mu), int(i_sigma))] = float(acc)
        if batch:
            self.revision += 1

    def cell(self, i_mu: int, i_sigma: int) -> tuple[float, float]:
        """The (μ, σ) key of a grid cell, rounded so that equal grid values compare equal."""
        mu, sigma = self.axes
        return (round(float(mu[i_mu]), 9), round(float(sigma[i_sigma]), 9))

    def complete(self) -> frozenset:
        return frozenset(v for v, c in self.cells.items() if len(c) == self.sizes.get(v, -1))

    def reset(self) -> None:
        self.clear()
        self.revision += 1
