"""A clock-driven simulator of sequential NIR graphs (``Linear``/``Conv2d -> CubaLIF`` pairs,
``SumPool2d`` and ``Flatten``, as engine/nir.py writes them).

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

The synapses act on the spike counts of a step as NIR defines them, written here without
batscope's layer code: ``Linear`` ``x -> W x``; ``Conv2d`` the valid, stride-1 cross-correlation
``y[o, r, c] = Σ_{i, dr, dc} W[o, i, dr, dc]·x[i, r + dr, c + dc]``; ``SumPool2d`` the sum over
each window (an odd edge dropped); ``Flatten`` the row-major flattening of ``(C, H, W)``. Neurons
are numbered in the graph's order: a layer of NIR shape (C, H, W) is flattened channels-first
(engine.nir.channels_first_order maps it to batscope's channels-last order).
"""

from __future__ import annotations

import math

import numpy as np

from .nir import sequential_stages
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


def _conv(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid, stride-1 cross-correlation of ``x [B, C_in, H, W]`` with ``w [C_out, C_in, k, k]``."""
    k = w.shape[2]
    h, wd = x.shape[2] - k + 1, x.shape[3] - k + 1
    y = np.zeros((x.shape[0], w.shape[0], h, wd))
    for dr in range(k):
        for dc in range(k):
            y += np.einsum("bihw,oi->bohw", x[:, :, dr : dr + h, dc : dc + wd], w[:, :, dr, dc])
    return y


def _sum_pool(x: np.ndarray, k: int) -> np.ndarray:
    """Sum over k x k windows, stride k, of ``x [B, C, H, W]`` (odd edges dropped)."""
    b, c, h, w = x.shape
    return x[:, :, : h // k * k, : w // k * k].reshape(b, c, h // k, k, w // k, k).sum((3, 5))


def _synapse(stage, x: np.ndarray) -> np.ndarray:
    """What a non-neuron stage makes of the spike counts ``x [B, *in_shape]`` of one step."""
    if stage.kind == "linear":
        return x @ np.asarray(stage.data, dtype=np.float64).T
    if stage.kind == "conv":
        return _conv(x, np.asarray(stage.data, dtype=np.float64))
    if stage.kind == "pool":
        return _sum_pool(x, stage.data)
    return x.reshape(x.shape[0], -1)  # flatten


def simulate_nir(graph, inp: SpikeTrains, t_max: float, dt: float) -> list[SpikeTrains]:
    """Clock-driven spikes of every ``CubaLIF`` layer of ``graph`` for the input ``inp``.

    ``inp``'s neurons are the graph's Input flattened in its own (channels-first) order. Spike
    times are the grid points ``n·dt`` in ``(0, t_max]`` (float64, NumPy), one
    :class:`SpikeTrains` per CubaLIF layer, neurons in the graph's order, with as many slots as
    the busiest neuron needs.
    """
    for name, v in (("dt", dt), ("t_max", t_max)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(v).__name__}")
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be finite and > 0, got {v}")
    in_shape, stages = sequential_stages(graph)
    n_inputs = math.prod(in_shape)
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

    neurons = [st for st in stages if st.kind == "lif"]
    props = {st.name: _propagators(st.data, dt) for st in neurons}
    for st in neurons:  # parameters in the layer's shape, broadcast over the batch
        props[st.name] = {k: v.reshape(st.out_shape) for k, v in props[st.name].items()}
    current = {st.name: np.zeros((batch, *st.out_shape)) for st in neurons}
    volt = {st.name: current[st.name] + props[st.name]["v_leak"] for st in neurons}  # at rest
    events = {st.name: [] for st in neurons}  # (step, sample array, neuron array) per layer

    def arrivals(lo, hi):
        if hi <= lo:
            return None
        x = np.zeros((batch, n_inputs))
        np.add.at(x, (b_idx[lo:hi], i_idx[lo:hi]), 1.0)
        return x.reshape(batch, *in_shape)

    # inputs at t = 0 act from the first step (the exact engine's strict Θ, docs/model.md §1): they
    # reach the first neuron layer's current before any propagation
    x = arrivals(0, bounds[1])
    for st in stages:
        if x is None:
            break
        if st.kind == "lif":
            current[st.name] += x * props[st.name]["jump"]
            break
        x = _synapse(st, x)
    for n in range(1, n_steps + 1):
        x = arrivals(bounds[n], bounds[n + 1])
        for st in stages:
            if st.kind != "lif":
                if x is not None:
                    x = _synapse(st, x)
                continue
            p, name = props[st.name], st.name
            volt[name] = (
                p["v_leak"] + p["b"] * (volt[name] - p["v_leak"]) + p["drive"] * current[name]
            )
            current[name] *= p["a"]
            if x is not None:
                current[name] += x * p["jump"]
            fired = volt[name] > p["v_thr"]
            if fired.any():
                volt[name] = np.where(fired, p["v_reset"], volt[name])
                s, j = np.nonzero(fired.reshape(batch, -1))
                events[name].append((n, s, j))
                x = fired.astype(np.float64)
            else:
                x = None
    outs = []
    for st in neurons:
        ev = events[st.name]
        if ev:
            n = np.concatenate([np.full(len(s), k) for k, s, _ in ev])
            s = np.concatenate([s for _, s, _ in ev])
            j = np.concatenate([j for _, _, j in ev])
        else:
            n = s = j = np.zeros(0, dtype=np.int64)
        outs.append(SpikeTrains.from_events(s, j, n * dt, batch, math.prod(st.out_shape)))
    return outs
