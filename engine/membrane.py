"""Exact membrane potential u(t) from stored spikes (SRM form, docs/model.md §3).

u(t) = sum_i w_ji sum_z eps(t - t_iz) - sum_k eta(t - t_k), with
eps(s) = Theta(s) tau (e^{-s/tau} - e^{-2s/tau}), eta(s) = Theta(s) reset e^{-s/tau}, tau = 2 tau_s.
Theta is strict, so u(t_k) = theta exactly at a spike and u(t_k+) = theta - reset.
No recording is needed; evaluated on the host in float64, in chunks of the time grid.
"""

from __future__ import annotations

import math

import numpy as np

_CHUNK = 2048


def _decay(s: np.ndarray, tau: float, factor: float) -> np.ndarray:
    """``Theta(s) e^{-factor s/tau}`` without overflow for s < 0."""
    return np.where(s > 0, np.exp(-factor * np.maximum(s, 0.0) / tau), 0.0)


def membrane_potential(t, pre_times, pre_counts, W, post_times, tau_s, reset) -> np.ndarray:
    """u(t) ``[n_sel, len(t)]`` of the neurons whose weight rows are ``W`` [n_sel, Ni].

    ``pre_times`` [Ni, Ki] / ``pre_counts`` [Ni]: the layer's inputs of one sample;
    ``post_times`` [n_sel, S]: the neurons' own spikes (+inf padded).
    """
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-D array of times, got shape {t.shape}")
    if not np.isfinite(t).all():
        raise ValueError("t must be finite")
    tau = 2.0 * float(tau_s)
    pre_times = np.asarray(pre_times, dtype=np.float64)
    pre_counts = np.asarray(pre_counts)
    W = np.asarray(W, dtype=np.float64)
    post_times = np.asarray(post_times, dtype=np.float64)
    out = np.zeros((W.shape[0], t.size))
    active = [np.flatnonzero(pre_counts > z) for z in range(pre_times.shape[1])]
    for a in range(0, t.size, _CHUNK):
        tc = t[a : a + _CHUNK]
        psp = np.zeros((pre_times.shape[0], tc.size))  # sum_z eps(t - t_iz) per input neuron
        for z, idx in enumerate(active):
            if idx.size == 0:
                continue
            s = tc[None, :] - pre_times[idx, z][:, None]
            psp[idx] += tau * (_decay(s, tau, 1.0) - _decay(s, tau, 2.0))
        u = W @ psp
        for k in range(post_times.shape[1]):
            tk = post_times[:, k]
            if not np.isfinite(tk).any():
                break
            s = tc[None, :] - np.where(np.isfinite(tk), tk, math.inf)[:, None]
            u -= float(reset) * _decay(s, tau, 1.0)
        out[:, a : a + _CHUNK] = u
    return out
