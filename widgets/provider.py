"""What the analysis views (gradient check, precision, pattern editor) take from the session.

:class:`SessionInputs` wraps two callables the factory passes: ``network_provider() -> Network |
None`` (the session's current network, e.g. ``TrainingController.current_network``) and
``training_provider() -> dict | None`` (``TrainingConfig.to_dict()``). Views only ever work on a
private float64 CPU copy of the network, never on the live one a training thread may be using.
``None`` from a provider means the default: the paper's 4 → 2 convergence network and task.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from batscope.engine.gradcheck import float64_copy
from batscope.engine.network import Network
from batscope.engine.spikes import SpikeTrains
from batscope.training.state import NetworkSpec, TrainingConfig, run_config
from batscope.training.taskdata import TaskData
from batscope.training.trainer import build_loss, build_network, load_task


def default_training() -> dict:
    """The default training settings: the convergence task (docs/training.md §4)."""
    return TrainingConfig().to_dict()


def default_network() -> Network:
    """The default network: 4 → 2 (τs = 1 s, θ = Δθ = 1, S = 10) with W ~ N(1.4, 0.6²), seed 0:
    a cell of paper Fig. 3 where the neurons fire and both variants can learn."""
    spec = NetworkSpec()
    spec.layers[0].param.update(init="normal", init_mean=1.4, init_std=0.6)
    return build_network(run_config(spec, TrainingConfig()), 4)


class SessionInputs:
    """Network copy, task samples and loss for the current session settings."""

    def __init__(
        self,
        network_provider: Callable[[], Network | None] | None = None,
        training_provider: Callable[[], dict | None] | None = None,
    ):
        self._network_provider = network_provider
        self._training_provider = training_provider
        self._cache: dict[tuple, TaskData] = {}

    def training(self) -> dict:
        d = self._training_provider() if self._training_provider is not None else None
        return dict(d) if d is not None else default_training()

    def network(self) -> Network:
        """A float64 CPU copy of the session's network (or of the default one)."""
        net = self._network_provider() if self._network_provider is not None else None
        return float64_copy(net if net is not None else default_network())

    def loss(self, training: dict | None = None):
        return build_loss(training or self.training())

    def task(self, training: dict | None = None) -> TaskData:
        """The task's data, loaded once per (task, encoding, size)."""
        tr = training or self.training()
        key = (tr["task"], tr.get("t_enc"), tr.get("n_train"), tr.get("val_fraction"))
        if key not in self._cache:
            self._cache = {key: load_task({**tr, "dtype": "float64"})}
        return self._cache[key]

    def samples(self, index: int, n: int = 1, training: dict | None = None):
        """``n`` consecutive displayed samples from ``index`` (wrapping): inputs and labels.

        Toy tasks show their training patterns, image tasks their test set (as the trainer's
        snapshots do)."""
        data = self.task(training)
        x, y = (
            (data.train, data.train_labels) if data.test is None else (data.test, data.test_labels)
        )
        idx = (int(index) + np.arange(max(1, min(int(n), x.batch_size)))) % x.batch_size
        return SpikeTrains(x.times[idx], x.counts[idx]), np.asarray(y)[idx]

    def t_max(self, training: dict | None = None) -> float:
        return float((training or self.training())["t_max"])
