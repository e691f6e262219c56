"""Remedies beyond the paper, opt-in only (``--remedy NAME``); the paper's presets use none.

- ``revive-silent``: at the start and after every epoch, an output neuron that is silent on every
  sample of the selection split has its incoming weights raised until it fires on a probe batch:
  by a tenth of the layer's mean |w|, then twice as much at each try (at most :data:`MAX_BUMPS`).
- ``redraw-silent``: at initialisation only (a fresh run, before epoch 0 is evaluated), an output
  neuron that fires on at most :data:`MIN_FIRING` of the first :data:`PROBE` training samples
  (silent on all of them, or nearly) has its incoming weights drawn again from its layer's own
  initialiser until it fires on more (at most :data:`MAX_REDRAWS` draws). The weights keep the
  paper's distribution, conditioned on a live output; the other layers are untouched.
- ``rollback``: when a run collapses (``health.collapsed``), the weights and optimiser state go
  back to the best checkpoint and the learning rate is halved for the rest of the run.
"""

from __future__ import annotations

import numpy as np
from batscope.engine.backend import to_numpy

from .evaluation import EVAL_BATCH, Evaluation, take
from .init_health import layer_counts, silent_neurons

REMEDIES = {
    "revive-silent": "raise the incoming weights of output neurons silent on every sample",
    "redraw-silent": "at initialisation, redraw the weights of output neurons silent on (nearly) "
    "all of the first 500 training samples until they fire",
    "rollback": "on a collapse, return to the best checkpoint and halve the learning rate",
}
BUMP = 0.1  # of the output layer's mean |w|: the first raise, doubled at each further try
MAX_BUMPS = 30
ROLLBACK_LR_FACTOR = 0.5
PROBE = 500  # training samples an output must fire on at initialisation (redraw-silent)
MIN_FIRING = 0.01  # fraction of the probe samples an output must fire on (redraw-silent)
MAX_REDRAWS = 100


def revive_silent(trainer, ev: Evaluation) -> dict[int, int]:
    """Raise the weights of ``ev``'s silent outputs; ``{neuron: bumps needed}`` (empty if none)."""
    if not ev.health.silent_outputs:
        return {}
    x, _ = trainer.split_data(ev.row.split)
    probe = trainer.to_backend(take(x, slice(0, EVAL_BATCH)))
    weights = [to_numpy(w).copy() for w in trainer.network.weights]
    w = weights[-1]
    first = BUMP * (float(np.abs(w).mean()) or 1.0)
    done = {}
    for j in ev.health.silent_outputs:
        step = first
        for bumps in range(1, MAX_BUMPS + 1):
            w[j] += w.dtype.type(step)
            step *= 2.0
            trainer.network.weights = weights
            counts = to_numpy(trainer.network.forward(probe, trainer.t_max)[-1].counts)
            if counts[:, j].max() > 0:
                done[j] = bumps
                break
        else:
            done[j] = -1  # still silent after MAX_BUMPS: reported, weights kept raised
    return done


def redraw_silent(network, probe, t_max: float, seed: int, to_backend=lambda b: b) -> dict:
    """Redraw the output rows firing on at most :data:`MIN_FIRING` of ``probe``'s samples (the
    first :data:`PROBE` training samples), seeded by ``seed``; ``{neuron: draws needed}`` (-1:
    still silent after :data:`MAX_REDRAWS`)."""

    def silent() -> tuple[int, ...]:
        return silent_neurons(layer_counts(network, probe, t_max, to_backend)[-1], MIN_FIRING)

    rng = np.random.default_rng([seed, 1])  # apart from the network's own stream
    weights = [to_numpy(w).copy() for w in network.weights]
    out, init = weights[-1], network.layers[-1].init
    todo, done = list(silent()), {}
    for draws in range(1, MAX_REDRAWS + 1):
        if not todo:
            break
        for j in todo:
            out[j] = init.init(rng, out[j].shape, out.dtype)
        network.weights = weights
        still = set(silent())
        done.update({j: draws for j in todo if j not in still})
        todo = [j for j in todo if j in still]
    done.update({j: -1 for j in todo})
    return done


def rollback(trainer, best_arrays: dict[str, np.ndarray], best_meta: dict) -> float:
    """Back to the best checkpoint's weights and optimiser state; returns the new lr scale."""
    n = len(trainer.network.weights)  # layers with weights (not pool)
    opt = dict(best_meta["optimizer"])
    opt.update({k[4:]: v for k, v in best_arrays.items() if k.startswith("opt.")})
    trainer.optimizer.load_state_dict(opt)
    trainer.network.weights = [trainer.xp.asarray(best_arrays[f"w{k}"]) for k in range(n)]
    trainer.lr_scale *= ROLLBACK_LR_FACTOR
    return trainer.lr_scale
