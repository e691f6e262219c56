"""NIR export and import of dense networks (the Neuromorphic Intermediate Representation).

A batscope :class:`~batscope.engine.network.Network` of ``Dense`` layers maps onto a sequential
NIR graph ``Input -> (Linear -> CubaLIF) x L -> Output``. The optional package ``nir`` (extra
``batscope[nir]``) is imported only when a function here is called.

Matching the dynamics
---------------------
batscope's neuron (method.md §1), with the weight ``w`` in potential per second::

    du/dt = -u/τ + g,           dg/dt = -g/τs + Σ_i w_i Σ_z δ(t - t_iz),      τ = 2τs,
    spike when u reaches θ, then u <- u - Δθ.

NIR's ``CubaLIF`` (nir.ir.neuron), fed by a ``Linear`` node of weight ``W``::

    τ_syn dI/dt = -I + w_in · Σ_i W_i S_i(t),       τ_mem dv/dt = (v_leak - v) + r·I,
    spike when v > v_threshold, then v <- v_reset,

with ``S_i`` the pre neuron's spike train as Dirac impulses. One pre spike therefore makes ``I``
jump by ``w_in·W/τ_syn``, and between spikes ``I`` decays with τ_syn. Take ``W = w``,
``τ_syn = τs``, ``τ_mem = τ = 2τs``, ``v_leak = 0`` and write ``I = c·g``. The jumps agree when
``c·w = w_in·w/τ_syn``, i.e. ``c = w_in/τ_syn``; the membrane equations agree
(``dv/dt = -v/τ + (r/τ_mem)·c·g``, the same as batscope's with ``v = u``) when
``r·c/τ_mem = 1``, i.e.

    **r · w_in = τ_syn · τ_mem = 2τs²**.

batscope exports ``w_in = 1`` and ``r = τ_syn·τ_mem`` (so ``I = g/τs``): the ``Linear`` weights
are batscope's own weights unchanged, and the post-synaptic potential of one spike is batscope's
kernel ``ε(s) = τ(e^{-s/τ} - e^{-2s/τ})`` times ``w`` (method.md §2). On import any
``(r, w_in)`` pair is accepted: row ``j`` of the ``Linear`` weight is multiplied by
``r_j·w_in_j/(τ_syn·τ_mem)``.

The reset: at a crossing ``u = θ`` exactly, so batscope's subtraction gives ``θ - Δθ``, which is
NIR's ``v_reset = 0`` only when ``Δθ = θ``; any other Δθ is refused (``NIRExportError``).
``v_threshold = θ``. NIR's strict ``v > θ`` and batscope's crossing differ only on a set of
measure zero. Time constants are in seconds, as everywhere in batscope.

What NIR cannot hold: the spike buffer ``n_max`` (a neuron that emitted ``n_max`` spikes stops
in batscope, while a NIR simulator lets it go on). It travels in each ``CubaLIF`` node's
``metadata`` as ``batscope_n_max``; the dynamics agree while no neuron saturates
(``net.saturation`` all zero). A clock-driven simulation of an exported graph,
:func:`batscope.engine.nir_clock.simulate_nir`, checks all of this numerically.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import numpy as np

from .backend import to_numpy
from .layers import Dense

N_MAX_KEY = "batscope_n_max"
# τ_mem must equal 2τ_syn (the closed form needs it); files written by others in float32 round.
TAU_RTOL = 1e-6


class NIRExportError(ValueError):
    """The network has a setting NIR cannot represent (or the graph one batscope cannot)."""


def require_nir():
    """The ``nir`` module, or an ImportError that says how to install it."""
    try:
        import nir  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError(
            "NIR export/import needs the optional package 'nir': "
            "pip install 'batscope[nir]' (or pip install nir)"
        ) from exc
    return nir


# ------------------------------------------------------------------------------------ export
def network_to_nir(net):
    """The ``nir.NIRGraph`` of a network of Dense layers (see the module docstring)."""
    nir = require_nir()
    nodes = {"input": nir.Input(input_type=np.array([net.n_inputs]))}
    edges = []
    prev = "input"
    for k, (layer, w) in enumerate(zip(net.layers, net.weights, strict=True)):
        if not isinstance(layer, Dense):
            raise NIRExportError(f"layer {k}: only Dense layers are exported, got {layer!r}")
        if layer.reset != layer.theta:
            raise NIRExportError(
                f"layer {k}: reset (Δθ = {layer.reset}) differs from theta (θ = {layer.theta}); "
                "NIR's CubaLIF resets to v_reset = 0, which equals batscope's subtractive reset "
                "only when Δθ = θ"
            )
        n = layer.n
        full = np.full(n, 1.0)
        tau_syn = layer.tau_s * full
        tau_mem = layer.tau * full
        nodes[f"linear{k}"] = nir.Linear(weight=np.array(to_numpy(w)))
        nodes[f"cubalif{k}"] = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=tau_syn * tau_mem,
            v_leak=np.zeros(n),
            v_threshold=layer.theta * full,
            v_reset=np.zeros(n),
            w_in=full.copy(),
            metadata={N_MAX_KEY: int(layer.n_max)},
        )
        edges += [(prev, f"linear{k}"), (f"linear{k}", f"cubalif{k}")]
        prev = f"cubalif{k}"
    nodes["output"] = nir.Output(output_type=np.array([net.layers[-1].n]))
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"source": "batscope"})


def write_nir(net, path) -> Path:
    """Write ``net.to_nir()`` to ``path`` with ``nir.write``, atomically; returns the path."""
    nir = require_nir()
    graph = network_to_nir(net)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


# ------------------------------------------------------------------------------------ import
def sequential_layers(graph) -> tuple[int, list[tuple[str, np.ndarray, object]]]:
    """``(n_inputs, [(name, weight [n_post, n_pre], CubaLIF node), ...])`` of a sequential graph.

    ``name`` is the CubaLIF node's name in the graph.

    The graph must be one chain ``Input -> (Linear | Affine with zero bias -> CubaLIF)+ ->
    Output``; anything else raises :class:`NIRExportError` naming the node. The neuron
    parameters are returned untouched (see :func:`network_from_nir` for what batscope accepts).
    """
    nir = require_nir()
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"graph must be a nir.NIRGraph, got {type(graph).__name__}")
    inputs = [k for k, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise NIRExportError(f"the graph must have exactly one Input node, found {inputs}")
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    chain, name, seen = [], inputs[0], set()
    while True:
        seen.add(name)
        nxt = succ.get(name, [])
        if isinstance(graph.nodes[name], nir.Output):
            if nxt:
                raise NIRExportError(f"node {name!r}: an Output node has outgoing edges")
            break
        if len(nxt) != 1:
            raise NIRExportError(
                f"node {name!r} has {len(nxt)} successors; only sequential graphs are supported"
            )
        name = nxt[0]
        if name in seen:
            raise NIRExportError(f"node {name!r}: the graph has a cycle")
        if not isinstance(graph.nodes[name], nir.Output):
            chain.append(name)
    if len(seen) != len(graph.nodes):
        extra = sorted(set(graph.nodes) - seen)
        raise NIRExportError(f"nodes {extra} are not on the Input -> Output chain")
    in_shape = np.asarray(graph.nodes[inputs[0]].input_type["input"]).ravel()
    if in_shape.size != 1:
        raise NIRExportError(f"the Input must be 1-D, got shape {in_shape.tolist()}")
    n_pre = int(in_shape[0])
    n_inputs = n_pre
    if len(chain) == 0 or len(chain) % 2:
        raise NIRExportError(
            f"expected pairs of Linear -> CubaLIF nodes, got {[_kind(graph, c) for c in chain]}"
        )
    layers = []
    for syn, neu in zip(chain[::2], chain[1::2], strict=True):
        w = _weight(graph, syn, nir)
        lif = graph.nodes[neu]
        if not isinstance(lif, nir.CubaLIF):
            raise NIRExportError(f"node {neu!r}: expected CubaLIF, got {_kind(graph, neu)}")
        if w.shape[1] != n_pre:
            raise NIRExportError(
                f"node {syn!r}: weight has {w.shape[1]} inputs, the layer below has {n_pre}"
            )
        if np.asarray(lif.v_threshold).shape != (w.shape[0],):
            raise NIRExportError(
                f"node {neu!r}: parameters have shape {np.asarray(lif.v_threshold).shape}, "
                f"expected ({w.shape[0]},) to match {syn!r}"
            )
        layers.append((neu, w, lif))
        n_pre = w.shape[0]
    return n_inputs, layers


def _kind(graph, name) -> str:
    return type(graph.nodes[name]).__name__


def _weight(graph, name, nir) -> np.ndarray:
    node = graph.nodes[name]
    if isinstance(node, nir.Affine):
        if np.any(np.asarray(node.bias) != 0):
            raise NIRExportError(f"node {name!r}: an Affine bias (a constant current) is refused")
    elif not isinstance(node, nir.Linear):
        raise NIRExportError(f"node {name!r}: expected Linear or Affine, got {_kind(graph, name)}")
    w = np.asarray(node.weight)
    if w.ndim != 2 or w.dtype.kind not in "fiu":
        raise NIRExportError(f"node {name!r}: weight must be a 2-D numeric array, got {w.shape}")
    if not np.isfinite(w).all():
        raise NIRExportError(f"node {name!r}: weight contains NaN or inf")
    return w


def _uniform(name: str, field: str, values) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0 or not np.isfinite(v).all():
        raise NIRExportError(f"node {name!r}: {field} must be finite")
    if not np.all(v == v[0]):
        raise NIRExportError(
            f"node {name!r}: {field} varies across neurons ({v.min()}..{v.max()}); batscope has "
            "one value per layer"
        )
    return float(v[0])


def network_from_nir(cls, graph, backend="cpu", dtype=None, n_max=None):
    """A ``cls`` (Network) rebuilt from a graph (or a ``.nir`` file) that
    :func:`sequential_layers` accepts.

    Refused (``NIRExportError`` naming the node and field): τ_mem ≠ 2τ_syn (relative
    tolerance ``TAU_RTOL``), v_leak ≠ 0, v_reset ≠ 0, parameters that vary within a layer,
    non-positive τ or threshold, ``r·w_in`` not positive. ``dtype`` defaults to the weights'
    float type (float64 for anything else); ``n_max`` overrides the ``batscope_n_max`` metadata
    (default 30 when a node has none).
    """
    if isinstance(graph, (str, os.PathLike)):
        graph = read_nir(graph)
    n_inputs, chain = sequential_layers(graph)
    layers, weights = [], []
    for name, w, lif in chain:
        tau_s = _uniform(name, "tau_syn", lif.tau_syn)
        tau_mem = _uniform(name, "tau_mem", lif.tau_mem)
        theta = _uniform(name, "v_threshold", lif.v_threshold)
        for field in ("v_leak", "v_reset"):
            if np.any(np.asarray(getattr(lif, field), dtype=np.float64) != 0):
                raise NIRExportError(
                    f"node {name!r}: {field} must be 0 (batscope's neuron rests and resets at 0)"
                )
        if tau_s <= 0 or theta <= 0:
            raise NIRExportError(f"node {name!r}: tau_syn and v_threshold must be > 0")
        if not math.isclose(tau_mem, 2.0 * tau_s, rel_tol=TAU_RTOL):
            raise NIRExportError(
                f"node {name!r}: tau_mem = {tau_mem} must be 2·tau_syn = {2 * tau_s} "
                "(batscope's closed-form spike times need τ = 2τs)"
            )
        gain = np.asarray(lif.r, dtype=np.float64) * np.asarray(lif.w_in, dtype=np.float64)
        if gain.shape != (w.shape[0],) or not (np.isfinite(gain).all() and (gain > 0).all()):
            raise NIRExportError(f"node {name!r}: r·w_in must be finite and > 0 per neuron")
        scale = gain / (tau_s * tau_mem)
        w_eff = w if np.all(scale == 1.0) else w * scale[:, None]
        meta = lif.metadata if isinstance(lif.metadata, dict) else {}
        cap = n_max if n_max is not None else int(meta.get(N_MAX_KEY, 30))
        layers.append(Dense(w.shape[0], tau_s, theta, n_max=cap))
        weights.append(w_eff)
    if dtype is None:
        kind = np.asarray(weights[0]).dtype
        dtype = kind.name if kind.name in ("float32", "float64") else "float64"
    net = cls(n_inputs, layers, backend=backend, dtype=dtype, seed=0)
    net.weights = weights
    return net


def read_nir(path):
    """``nir.read(path)`` with a clear error for a missing or unreadable file."""
    nir = require_nir()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such NIR file")
    try:
        return nir.read(p)
    except (OSError, KeyError, ValueError, AssertionError, TypeError) as exc:
        raise ValueError(f"{p}: not a readable NIR file ({exc})") from exc
