"""Central finite differences of the linear probe L = sum r t (docs/backward.md §8), shared by the
gradient tests of every layer type.

Every weight and every finite input time is perturbed by +-eps; a perturbation that changes any
spike count is skipped (the map is only piecewise smooth). Errors are relative to max(1, |g|).
"""

from typing import NamedTuple

import numpy as np
from batscope.engine import SpikeTrains

EPS = 1e-7


class FDResult(NamedTuple):
    worst_w: float  # worst relative error over the weights checked
    n_w: int  # weights checked
    n_skip: int  # weights skipped (a perturbation changed a spike count)
    worst_t: float  # worst relative error over the input times checked
    n_t: int  # input times checked
    grads: list  # the analytic weight gradients
    comps: list  # the network's error components after the analytic backward


def _probe(net, times, t_max, r):
    outs = net.forward(SpikeTrains.from_arrays(times), t_max)
    t = np.where(np.isfinite(outs[-1].times), outs[-1].times, 0.0)
    return float((r * t).sum()), [o.counts.copy() for o in outs]


def fd_check(net, times, t_max, seed=0, eps=EPS) -> FDResult:
    """The analytic gradients of ``net`` on ``times`` against central finite differences."""
    outs = net.forward(SpikeTrains.from_arrays(times), t_max)
    counts0 = [o.counts.copy() for o in outs]
    r = np.random.default_rng(seed).normal(size=outs[-1].times.shape)
    grads = net.backward(r, input_errors=True)
    g_in = net.input_errors.copy()
    comps = net.error_components

    def fd(apply):
        vals = []
        for sign in (1, -1):
            val, counts = _probe(net, apply(sign), t_max, r)
            if any((a != b).any() for a, b in zip(counts, counts0, strict=True)):
                return None
            vals.append(val)
        return (vals[0] - vals[1]) / (2 * eps)

    worst_w, n_w, n_skip = 0.0, 0, 0
    for k, w in enumerate(net.weights):
        for idx in np.ndindex(*w.shape):
            w0 = w[idx]

            def apply(sign, w=w, idx=idx, w0=w0):
                w[idx] = w0 + sign * eps
                return times

            est = fd(apply)
            w[idx] = w0
            if est is None:
                n_skip += 1
                continue
            n_w += 1
            worst_w = max(worst_w, abs(est - grads[k][idx]) / max(1.0, abs(grads[k][idx])))
    worst_t, n_t = 0.0, 0
    for idx in zip(*np.nonzero(np.isfinite(times)), strict=True):

        def apply(sign, idx=idx):
            t = times.copy()
            t[idx] += sign * eps
            return t

        est = fd(apply)
        if est is None:
            continue
        n_t += 1
        worst_t = max(worst_t, abs(est - g_in[idx]) / max(1.0, abs(g_in[idx])))
    return FDResult(worst_w, n_w, n_skip, worst_t, n_t, grads, comps)
