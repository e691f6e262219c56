"""A clock-driven simulator of sequential NIR graphs (``Linear -> CubaLIF`` chains).

It integrates NIR's ``CubaLIF`` equations as NIR states them, with every parameter as given in
the graph (``r``, ``w_in``, ``v_leak``, ``v_reset``, any τ_mem), independently of batscope's
neuron code, so that an exported graph can be checked against the exact engine::

    τ_syn dI/dt = -I + w_in · Σ_i W_i S_i(t),     τ_mem dv/dt = (v_leak - v) + r·I,
    spike when v > v_threshold, then v <- v_reset.

Each step of ``dt`` applies the exact propagator of the linear system (no integration error:
only the grid quantisation of O(dt) remains), with a = e^{-dt/τ_syn}, b = e^{-dt/τ_mem}::

    I <- a·I,   v <- v_leak + b·(v - v_leak) + (r/τ_mem)·I·κ,
    κ = τ_syn·τ_mem/(τ_mem - τ_syn)·(b - a)   (κ = dt·b when τ_mem = τ_syn).

Spikes arriving in ``(t_{n-1}, t_n]`` are added to I at t_n (each adds ``w_in·W/τ_syn``), after
the propagation; a neuron whose v exceeds its threshold at t_n spikes at t_n and its spike reaches
the next layer at the same t_n. No spike buffer: a neuron spikes as often as its dynamics say.
"""

from __future__ import annotations

import math

import numpy as np

from .nir import sequential_layers
from .spikes import SpikeTrains


def _propagators(lif, dt: float):
    tau_syn = np.asarray(lif.tau_syn, dtype=np.float64)
    tau_mem = np.asarray(lif.tau_mem, dtype=np.float64)
    a = np.exp(-dt / tau_syn)
    b = np.exp(-dt / tau_mem)
    same = np.isclose(tau_mem, tau_syn, rtol=1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(same, dt * b, tau_syn * tau_mem / (tau_mem - tau_syn) * (b - a))
    r = np.asarray(lif.r, dtype=np.float64)
    return {
        "a": a,
        "b": b,
        "drive": r / tau_mem * kappa,
        "jump": np.asarray(lif.w_in, dtype=np.float64) / tau_syn,
        "v_leak": np.asarray(lif.v_leak, dtype=np.float64),
        "v_thr": np.asarray(lif.v_threshold, dtype=np.float64),
        "v_reset": np.asarray(lif.v_reset, dtype=np.float64),
    }


def simulate_nir(graph, inp: SpikeTrains, t_max: float, dt: float) -> list[SpikeTrains]:
    """Clock-driven spikes of every ``CubaLIF`` layer of ``graph`` for the input ``inp``.

    Spike times are the grid points ``n·dt`` in ``(0, t_max]`` (float64, NumPy), one
    :class:`SpikeTrains` per layer with as many slots as the busiest neuron needs.
    """
    for name, v in (("dt", dt), ("t_max", t_max)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(v).__name__}")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > 0, got {v}")
    n_inputs, chain = sequential_layers(graph)
    if not isinstance(inp, SpikeTrains):
        raise TypeError(f"inp must be SpikeTrains, got {type(inp).__name__}")
    if inp.n_neurons != n_inputs:
        raise ValueError(f"inp has {inp.n_neurons} neurons, the graph's Input has {n_inputs}")
    n_steps = int(math.floor(t_max / dt + 1e-9))
    if n_steps > 10_000_000:
        raise ValueError(f"dt={dt} gives {n_steps} steps over t_max={t_max}; use a larger dt")
    batch = inp.batch_size
    pre = inp.numpy()
    times = np.asarray(pre.times, dtype=np.float64)
    b_idx, i_idx, _ = np.nonzero(np.isfinite(times))
    step = np.ceil(times[np.isfinite(times)] / dt - 1e-9).astype(np.int64)
    order = np.argsort(step, kind="stable")
    step, b_idx, i_idx = step[order], b_idx[order], i_idx[order]
    bounds = np.searchsorted(step, np.arange(n_steps + 2))

    weights = [np.asarray(w, dtype=np.float64) for _, w, _ in chain]
    props = [_propagators(lif, dt) for _, _, lif in chain]
    current = [np.zeros((batch, w.shape[0])) for w in weights]
    volt = [c + p["v_leak"] for p, c in zip(props, current, strict=True)]  # at rest
    events = [[] for _ in chain]  # (step, sample array, neuron array) per layer

    def add_input(k, counts):
        current[k] += (counts @ weights[k].T) * props[k]["jump"]

    # inputs at t = 0 act from the first step (the exact engine's strict Θ, method.md §0)
    first = np.zeros((batch, n_inputs))
    np.add.at(first, (b_idx[: bounds[1]], i_idx[: bounds[1]]), 1.0)
    if bounds[1]:
        add_input(0, first)
    for n in range(1, n_steps + 1):
        arrived = None
        lo, hi = bounds[n], bounds[n + 1]
        if hi > lo:
            arrived = np.zeros((batch, n_inputs))
            np.add.at(arrived, (b_idx[lo:hi], i_idx[lo:hi]), 1.0)
        for k, p in enumerate(props):
            volt[k] = p["v_leak"] + p["b"] * (volt[k] - p["v_leak"]) + p["drive"] * current[k]
            current[k] *= p["a"]
            if arrived is not None:
                add_input(k, arrived)
            fired = volt[k] > p["v_thr"]
            if fired.any():
                volt[k] = np.where(fired, p["v_reset"], volt[k])
                s, j = np.nonzero(fired)
                events[k].append((n, s, j))
                arrived = fired.astype(np.float64)
            else:
                arrived = None
    outs = []
    for k, w in enumerate(weights):
        if events[k]:
            n = np.concatenate([np.full(len(s), st) for st, s, _ in events[k]])
            s = np.concatenate([s for _, s, _ in events[k]])
            j = np.concatenate([j for _, _, j in events[k]])
        else:
            n = s = j = np.zeros(0, dtype=np.int64)
        outs.append(SpikeTrains.from_events(s, j, n * dt, batch, w.shape[0]))
    return outs
