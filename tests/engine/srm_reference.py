"""Independent reference for engine tests: the SRM potential with resets, solved numerically.

u(t) = sum_i w_i sum_z eps(t - t_iz) - sum_k reset e^{-(t - t_k)/tau}   (docs/model.md §3),
spikes found one by one by a fine bracket scan of u - theta followed by ``scipy.optimize.brentq``.
No use of the closed-form spike time (docs/forward.md §1–§4) or of engine code.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def psp(s: np.ndarray, tau: float) -> np.ndarray:
    """eps(s) = Theta(s) tau (e^{-s/tau} - e^{-2s/tau})."""
    sp = np.maximum(s, 0.0)
    return np.where(s > 0, tau * (np.exp(-sp / tau) - np.exp(-2 * sp / tau)), 0.0)


def potential(t, in_times, in_w, out_times, tau, reset):
    """u(t) for inputs ``in_times`` (1-D) of weights ``in_w`` and own spikes ``out_times``."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    u = (in_w[:, None] * psp(t[None, :] - in_times[:, None], tau)).sum(axis=0)
    for tk in out_times:
        s = t - tk
        u -= np.where(s > 0, reset * np.exp(-np.maximum(s, 0.0) / tau), 0.0)
    return u


def reference_spikes(in_times, in_w, tau_s, theta, reset, t_max, n_max, h=2e-4, graze=1e-4):
    """Spike times of one neuron by bracket scan + brentq.

    Returns ``(times, ambiguous)``; ``ambiguous`` is True when u comes within ``graze * theta``
    of the threshold without a clear crossing (a near-grazing case a grid can miss).
    """
    tau = 2.0 * tau_s
    in_times = np.asarray(in_times, dtype=np.float64)
    in_w = np.asarray(in_w, dtype=np.float64)
    grid = np.arange(0.0, t_max + h, h)
    grid[-1] = min(grid[-1], t_max)
    grid = np.unique(np.concatenate([grid, in_times[in_times <= t_max], [t_max]]))
    out: list[float] = []
    start = 0
    f = potential(grid, in_times, in_w, [], tau, reset) - theta  # inputs only, then resets

    def fu(x):
        return potential(x, in_times, in_w, out, tau, reset)[0] - theta

    while len(out) < n_max:
        seg = f[start:]
        up = np.flatnonzero((seg[:-1] < 0) & (seg[1:] >= 0))
        if up.size == 0:
            return np.array(out), bool(seg.size and seg.max() > -graze * theta)
        a, b = grid[start + up[0]], grid[start + up[0] + 1]
        tk = brentq(fu, a, b, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200)
        out.append(tk)
        s = grid - tk
        f -= np.where(s > 0, reset * np.exp(-np.maximum(s, 0.0) / tau), 0.0)
        start = int(np.searchsorted(grid, tk, side="right"))
        if start >= grid.size:
            break
    return np.array(out), False


def direct_delta(times, udot, phi, tau, reset):
    """delta_k = phi_k + sum_{z>k} (reset/tau) e^{-(t_z - t_k)/tau} / u_dot_z * delta_z.

    The direct O(n^2) sum of paper Eq. 20 / docs/backward.md §3, evaluated backwards.
    """
    n = len(times)
    delta = np.zeros(n)
    for k in range(n - 1, -1, -1):
        acc = phi[k]
        for z in range(k + 1, n):
            acc += (reset / tau) * np.exp(-(times[z] - times[k]) / tau) / udot[z] * delta[z]
        delta[k] = acc
    return delta
