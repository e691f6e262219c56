"""NIR export and import (the Neuromorphic Intermediate Representation).

A batscope :class:`~batscope.engine.network.Network` maps onto a sequential NIR graph::

    Input -> [Conv2d -> CubaLIF | SumPool2d | Flatten -> Linear -> CubaLIF | Linear -> CubaLIF]+
          -> Output

one ``Linear -> CubaLIF`` pair per ``Dense`` layer, one ``Conv2d -> CubaLIF`` pair per
``Conv2D`` layer, one ``SumPool2d`` per ``Pool2D`` layer, and a ``Flatten`` before a ``Dense``
layer that reads an image-like (H, W, C) layer. The optional package ``nir`` (extra
``batscope[nir]``) is imported only when a function here is called.

Matching the dynamics
---------------------
batscope's neuron (docs/model.md §2), with the weight ``w`` in potential per second::

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
kernel ``ε(s) = τ(e^{-s/τ} - e^{-2s/τ})`` times ``w`` (docs/model.md §3). On import any
``(r, w_in)`` pair is accepted: row ``j`` of the ``Linear`` weight is multiplied by
``r_j·w_in_j/(τ_syn·τ_mem)`` (a conv layer shares its weights, so there ``r·w_in`` must be the
same for all its neurons).

The reset: at a crossing ``u = θ`` exactly, so batscope's subtraction gives ``θ - Δθ``, which is
NIR's ``v_reset = 0`` only when ``Δθ = θ``; any other Δθ is refused (``NIRExportError``).
``v_threshold = θ``. NIR's strict ``v > θ`` and batscope's crossing differ only on a set of
measure zero. Time constants are in seconds, as everywhere in batscope.

Convolution, pooling and the order of neurons
---------------------------------------------
NIR follows PyTorch: an image-like tensor is **channels-first** ``(C, H, W)``, and flattening it
(``Flatten`` with ``start_dim=0``) gives index ``c·H·W + row·W + col``. batscope flattens
**channels-last** ``(H, W, C)``: index ``(row·W + col)·C + c`` (engine/layers.py). So

* the ``Input`` node's shape is ``(C, H, W)`` for an ``input_shape=(H, W, C)`` network (and
  ``(n,)`` for a flat one); neuron ``i`` of the graph's flattened input is batscope's input
  neuron ``channels_first_order((H, W, C))[i]``, and the same holds for the neurons of every
  image-like layer (a conv layer's ``CubaLIF`` parameters have shape ``(C_out, H', W')``);
* a ``Conv2d`` node holds batscope's weight ``[C_out, k, k, C_in]`` transposed to NIR's
  ``(C_out, C_in, kH, kW)``, with ``input_shape = (H, W)``, stride 1, no padding, dilation 1,
  one group and a zero bias: batscope's valid, stride-1 cross-correlation (docs/conv-pool.md §2),
  which is also what ``Conv2d`` computes;
* a ``Dense`` layer after an image-like layer reads batscope's channels-last order, the
  ``Linear`` after NIR's ``Flatten`` reads the channels-first one: its weight is batscope's with
  the columns permuted, ``W_nir[:, i] = w[:, channels_first_order(shape)[i]]``.

Spike-aggregation pooling (docs/conv-pool.md §3) becomes ``SumPool2d`` with kernel = stride = size
and no padding (an odd edge row or column is dropped, as in batscope). Why a *sum* is exact: a spike
train is a sum of Dirac impulses, ``S_i(t) = Σ_z δ(t - t_iz)``, so the sum over a window,
``Σ_{i∈window} S_i(t) = Σ_{i∈window} Σ_z δ(t - t_iz)``, is the train with one impulse per spike
of every neuron of the window: the union of the window's trains, coincident spikes counted with
their multiplicity. The next layer's synapse is linear in its input: a weight ``w`` on the pooled
output gives the current ``w·Σ_i S_i(t)``, a jump of ``w`` (times the scale above) for every
spike of the union, which is exactly what batscope's next layer receives from the pool's union
train (its buffer ``size²·K`` holds every spike of the window, nothing is dropped). No spike is
made or lost by pooling, so no threshold is involved and ``SumPool2d`` has no neuron after it.

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
from typing import NamedTuple

import numpy as np

from .backend import to_numpy
from .layers import Conv2D, Dense, Pool2D

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
def channels_first_order(shape) -> np.ndarray:
    """``order[i]``: batscope's (channels-last) index of the neuron at NIR's (channels-first)
    flat index ``i`` in a layer of batscope shape ``(H, W, C)``; the identity for ``(n,)``."""
    n = math.prod(shape)
    if len(shape) != 3:
        return np.arange(n)
    return np.arange(n).reshape(shape).transpose(2, 0, 1).ravel()


def _nir_shape(shape) -> np.ndarray:
    """NIR's shape of a batscope layer shape: (H, W, C) -> (C, H, W); (n,) unchanged."""
    return np.array([shape[2], shape[0], shape[1]] if len(shape) == 3 else list(shape))


def _check_reset(layer, k: int) -> None:
    """NIRExportError unless layer ``k`` resets by its threshold, Δθ = θ (module docstring)."""
    if layer.reset != layer.theta:
        raise NIRExportError(
            f"layer {k}: reset (Δθ = {layer.reset}) differs from theta (θ = {layer.theta}); "
            "NIR's CubaLIF resets to v_reset = 0, which equals batscope's subtractive reset "
            "only when Δθ = θ"
        )


def export_refusal(net) -> str:
    """Why :func:`network_to_nir` would refuse ``net`` ("" when it would not), found without
    building the graph: a layer NIR cannot hold or a reset Δθ ≠ θ."""
    for k, layer in enumerate(net.layers):
        if not isinstance(layer, (Dense, Conv2D, Pool2D)):
            return f"layer {k}: only Dense, Conv2D and Pool2D layers are exported, got {layer!r}"
        if not isinstance(layer, Pool2D):
            try:
                _check_reset(layer, k)
            except NIRExportError as exc:
                return str(exc)
    return ""


def _cubalif(nir, layer, k: int, shape):
    """The ``CubaLIF`` of a neuron layer, parameters of NIR's output shape (module docstring)."""
    _check_reset(layer, k)
    full = np.ones(tuple(_nir_shape(shape)))
    tau_syn = layer.tau_s * full
    tau_mem = layer.tau * full
    return nir.CubaLIF(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        r=tau_syn * tau_mem,
        v_leak=np.zeros_like(full),
        v_threshold=layer.theta * full,
        v_reset=np.zeros_like(full),
        w_in=full.copy(),
        metadata={N_MAX_KEY: int(layer.n_max)},
    )


def network_to_nir(net):
    """The ``nir.NIRGraph`` of a network of Dense, Conv2D and Pool2D layers (module
    docstring); anything else raises :class:`NIRExportError`."""
    nir = require_nir()
    nodes = {"input": nir.Input(input_type=_nir_shape(net.input_shape))}
    edges = []

    def add(name, node):
        edges.append((next(reversed(nodes)), name))
        nodes[name] = node

    weights = iter(net.weights)
    for k, layer in enumerate(net.layers):
        shape = tuple(net.shapes[k])
        if isinstance(layer, Dense):
            w = np.array(to_numpy(next(weights)))
            if len(shape) == 3:
                add(
                    f"flatten{k}",
                    nir.Flatten(input_type={"input": _nir_shape(shape)}, start_dim=0, end_dim=-1),
                )
                w = w[:, channels_first_order(shape)]
            add(f"linear{k}", nir.Linear(weight=w))
            add(f"cubalif{k}", _cubalif(nir, layer, k, net.shapes[k + 1]))
        elif isinstance(layer, Conv2D):
            w = np.array(to_numpy(next(weights)))
            conv = nir.Conv2d(
                input_shape=(shape[0], shape[1]),
                weight=np.ascontiguousarray(w.transpose(0, 3, 1, 2)),  # (C_out, C_in, kH, kW)
                stride=1,
                padding=0,
                dilation=1,
                groups=1,
                bias=np.zeros(layer.channels, dtype=w.dtype),
            )
            add(f"conv{k}", conv)
            add(f"cubalif{k}", _cubalif(nir, layer, k, net.shapes[k + 1]))
        elif isinstance(layer, Pool2D):
            size = np.array([layer.size, layer.size])
            add(
                f"sumpool{k}",
                nir.SumPool2d(kernel_size=size, stride=size, padding=np.zeros(2, dtype=np.int64)),
            )
        else:
            raise NIRExportError(
                f"layer {k}: only Dense, Conv2D and Pool2D layers are exported, got {layer!r}"
            )
    add("output", nir.Output(output_type=_nir_shape(net.shapes[-1])))
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
class Stage(NamedTuple):
    """One node of a sequential graph as the importer and the clock simulator read it.

    ``kind``: "linear" (``data`` = weight ``[n_post, n_pre]``), "conv" (``data`` = weight
    ``(C_out, C_in, k, k)``), "pool" (``data`` = the window size), "flatten" (``data`` None) or
    "lif" (``data`` = the CubaLIF node). ``in_shape``/``out_shape``: NIR's shapes (channels
    first) of what the node reads and gives."""

    kind: str
    name: str
    data: object
    in_shape: tuple
    out_shape: tuple


def _chain(graph, nir) -> tuple[str, list[str]]:
    """The Input node's name and the node names from it to the Output (both excluded)."""
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
    return inputs[0], chain


def _pair(value, name: str, field: str) -> tuple[int, int]:
    v = np.asarray(value).ravel()
    if v.size == 1:
        v = np.repeat(v, 2)
    if v.size != 2 or v.dtype.kind not in "iuf" or not np.all(v == np.round(v)):
        raise NIRExportError(f"node {name!r}: {field} must be one or two integers, got {value!r}")
    return int(v[0]), int(v[1])


def _conv_stage(graph, name, shape, nir) -> Stage:
    node = graph.nodes[name]
    w = np.asarray(node.weight)
    if w.ndim != 4 or w.dtype.kind != "f" or not np.isfinite(w).all():
        raise NIRExportError(f"node {name!r}: weight must be a finite 4-D float array")
    c_out, c_in, kh, kw = w.shape
    if len(shape) != 3 or shape[0] != c_in:
        raise NIRExportError(
            f"node {name!r}: weight reads {c_in} channels, the layer below has shape {shape}"
        )
    if kh != kw:
        raise NIRExportError(f"node {name!r}: only square kernels are supported, got {kh}x{kw}")
    if node.input_shape is not None and _pair(node.input_shape, name, "input_shape") != shape[1:]:
        raise NIRExportError(
            f"node {name!r}: input_shape {tuple(np.asarray(node.input_shape))} differs from the "
            f"layer below, {shape[1:]} (H, W)"
        )
    padding = (0, 0) if isinstance(node.padding, str) and node.padding == "valid" else None
    if padding is None and not isinstance(node.padding, str):
        padding = _pair(node.padding, name, "padding")
    for field, value, want in (
        ("stride", None if node.stride is None else _pair(node.stride, name, "stride"), (1, 1)),
        ("padding", padding, (0, 0)),
        ("dilation", _pair(node.dilation, name, "dilation"), (1, 1)),
    ):
        if value != want:
            raise NIRExportError(
                f"node {name!r}: {field} must be {want} (batscope's Conv2D is a valid, stride-1 "
                f"cross-correlation), got {value if value is not None else node.padding}"
            )
    if int(node.groups) != 1:
        raise NIRExportError(f"node {name!r}: groups must be 1, got {node.groups}")
    if node.bias is not None and np.any(np.asarray(node.bias) != 0):
        raise NIRExportError(f"node {name!r}: a Conv2d bias (a constant current) is refused")
    if kh > shape[1] or kh > shape[2]:
        raise NIRExportError(f"node {name!r}: kernel {kh}x{kh} exceeds its input {shape[1:]}")
    out = (c_out, shape[1] - kh + 1, shape[2] - kh + 1)
    return Stage("conv", name, w, shape, out)


def _pool_stage(graph, name, shape) -> Stage:
    node = graph.nodes[name]
    size = _pair(node.kernel_size, name, "kernel_size")
    if size[0] != size[1] or size[0] < 1:
        raise NIRExportError(f"node {name!r}: only square windows are supported, got {size}")
    if _pair(node.stride, name, "stride") != size:
        raise NIRExportError(f"node {name!r}: stride must equal kernel_size {size}")
    if _pair(node.padding, name, "padding") != (0, 0):
        raise NIRExportError(f"node {name!r}: padding must be 0")
    k = size[0]
    if len(shape) != 3 or k > shape[1] or k > shape[2]:
        raise NIRExportError(f"node {name!r}: a {k}x{k} window does not fit its input {shape}")
    return Stage("pool", name, k, shape, (shape[0], shape[1] // k, shape[2] // k))


def sequential_stages(graph) -> tuple[tuple, list[Stage]]:
    """``(input shape, stages)`` of a sequential graph, shapes in NIR's (channels-first) order.

    The graph must be one chain from ``Input`` to ``Output`` of ``Linear`` (or ``Affine`` with
    zero bias) and ``Conv2d`` nodes each followed by a ``CubaLIF``, ``SumPool2d`` nodes and
    ``Flatten`` nodes that flatten a whole image-like layer before a ``Linear``; anything else
    raises :class:`NIRExportError` naming the node. Neuron parameters are returned untouched
    (see :func:`network_from_nir` for what batscope accepts).
    """
    nir = require_nir()
    first, chain = _chain(graph, nir)
    in_shape = tuple(int(x) for x in np.asarray(graph.nodes[first].input_type["input"]).ravel())
    if len(in_shape) not in (1, 3) or min(in_shape, default=0) < 1:
        raise NIRExportError(f"the Input must have shape (n,) or (C, H, W), got {list(in_shape)}")
    stages, shape = [], in_shape
    for pos, name in enumerate(chain):
        node = graph.nodes[name]
        before = stages[-1].kind if stages else "input"
        if before in ("linear", "conv") and not isinstance(node, nir.CubaLIF):
            raise NIRExportError(f"node {name!r}: expected CubaLIF, got {_kind(graph, name)}")
        if isinstance(node, (nir.Linear, nir.Affine)):
            w = _weight(graph, name, nir)
            if len(shape) != 1:
                raise NIRExportError(
                    f"node {name!r}: a Linear node reads a flat layer; the layer below has "
                    f"shape {list(shape)} (a Flatten must come first)"
                )
            if w.shape[1] != shape[0]:
                raise NIRExportError(
                    f"node {name!r}: weight has {w.shape[1]} inputs, the layer below has {shape[0]}"
                )
            stage = Stage("linear", name, w, shape, (w.shape[0],))
        elif isinstance(node, nir.Conv2d):
            stage = _conv_stage(graph, name, shape, nir)
        elif isinstance(node, nir.SumPool2d):
            stage = _pool_stage(graph, name, shape)
        elif isinstance(node, nir.Flatten):
            nxt = graph.nodes[chain[pos + 1]] if pos + 1 < len(chain) else None
            if len(shape) != 3 or not isinstance(nxt, (nir.Linear, nir.Affine)):
                raise NIRExportError(
                    f"node {name!r}: only a Flatten of an image-like layer before a Linear "
                    "node is supported"
                )
            if int(node.start_dim) not in (0, -3) or int(node.end_dim) != -1:
                raise NIRExportError(
                    f"node {name!r}: Flatten must flatten the whole (C, H, W) layer "
                    f"(start_dim 0, end_dim -1), got {node.start_dim}, {node.end_dim}"
                )
            stage = Stage("flatten", name, None, shape, (math.prod(shape),))
        elif isinstance(node, nir.CubaLIF):
            if before not in ("linear", "conv"):
                raise NIRExportError(
                    f"node {name!r}: a CubaLIF must follow a Linear or Conv2d node"
                )
            if np.asarray(node.v_threshold).shape not in (shape, (math.prod(shape),)):
                raise NIRExportError(
                    f"node {name!r}: parameters have shape {np.asarray(node.v_threshold).shape}, "
                    f"expected {shape} to match {stages[-1].name!r}"
                )
            stage = Stage("lif", name, node, shape, shape)
        else:
            raise NIRExportError(
                f"node {name!r}: {_kind(graph, name)} is not supported (expected Linear, "
                "Affine, Conv2d, SumPool2d, Flatten or CubaLIF)"
            )
        stages.append(stage)
        shape = stage.out_shape
    if not stages or stages[-1].kind in ("linear", "conv", "flatten"):
        raise NIRExportError(
            "the chain must end with a CubaLIF or SumPool2d node, got "
            f"{[_kind(graph, c) for c in chain]}"
        )
    if not any(st.kind == "lif" for st in stages):
        raise NIRExportError("the graph has no CubaLIF node")
    return in_shape, stages


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


def _batscope_shape(nir_shape) -> tuple:
    """(C, H, W) -> (H, W, C); (n,) unchanged."""
    return (nir_shape[1], nir_shape[2], nir_shape[0]) if len(nir_shape) == 3 else nir_shape


def _neuron(stage: Stage, n_max):
    """``(tau_s, theta, gain [out_shape], cap)`` of a CubaLIF stage, refusing what batscope's
    neuron cannot be (module docstring)."""
    name, lif = stage.name, stage.data
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
    n = math.prod(stage.out_shape)
    if gain.size != n or not (np.isfinite(gain).all() and (gain > 0).all()):
        raise NIRExportError(f"node {name!r}: r·w_in must be finite and > 0 per neuron")
    meta = lif.metadata if isinstance(lif.metadata, dict) else {}
    cap = n_max if n_max is not None else int(meta.get(N_MAX_KEY, 30))
    return tau_s, theta, gain.reshape(-1) / (tau_s * tau_mem), cap


def network_from_nir(cls, graph, backend="cpu", dtype=None, n_max=None):
    """A ``cls`` (Network) rebuilt from a graph (or a ``.nir`` file) that
    :func:`sequential_stages` accepts.

    Refused (``NIRExportError`` naming the node and field): τ_mem ≠ 2τ_syn (relative
    tolerance ``TAU_RTOL``), v_leak ≠ 0, v_reset ≠ 0, parameters that vary within a layer,
    non-positive τ or threshold, ``r·w_in`` not positive (or, for a conv layer, not the same for
    all its neurons). ``dtype`` defaults to the weights' float type (float64 for anything
    else); ``n_max`` overrides the ``batscope_n_max`` metadata (default 30 when a node has
    none). Weights after a ``Flatten`` and conv weights go back to batscope's layouts.
    """
    if isinstance(graph, (str, os.PathLike)):
        graph = read_nir(graph)
    in_shape, stages = sequential_stages(graph)
    layers, weights = [], []
    flat_from = None  # batscope shape of the image-like layer a Flatten just flattened
    for pos, st in enumerate(stages):
        if st.kind == "flatten":
            flat_from = _batscope_shape(st.in_shape)
        elif st.kind == "pool":
            layers.append(Pool2D(st.data))
        elif st.kind == "lif":
            syn = stages[pos - 1]
            tau_s, theta, scale, cap = _neuron(st, n_max)
            if syn.kind == "linear":
                w = syn.data if np.all(scale == 1.0) else syn.data * scale[:, None]
                if flat_from is not None:  # NIR's channels-first columns -> batscope's order
                    back = np.empty_like(w)
                    back[:, channels_first_order(flat_from)] = w
                    w, flat_from = back, None
                layers.append(Dense(w.shape[0], tau_s, theta, n_max=cap))
            else:
                if not np.all(scale == scale[0]):
                    raise NIRExportError(
                        f"node {st.name!r}: r·w_in varies across the neurons of a conv layer, "
                        "whose weights are shared"
                    )
                w = syn.data if scale[0] == 1.0 else syn.data * scale[0]
                w = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # (C_out, k, k, C_in)
                layers.append(Conv2D(w.shape[0], w.shape[1], tau_s, theta, n_max=cap))
            weights.append(w)
    if dtype is None:
        kind = np.asarray(weights[0]).dtype
        dtype = kind.name if kind.name in ("float32", "float64") else "float64"
    if len(in_shape) == 3:
        net = cls(None, layers, backend=backend, dtype=dtype, seed=0,
                  input_shape=_batscope_shape(in_shape))  # fmt: skip
    else:
        net = cls(in_shape[0], layers, backend=backend, dtype=dtype, seed=0)
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
