"""What the views show of any Network on given samples: the Snapshot parts of one sample and the
population statistics of a set, computed the same way for a training run and for a notebook.

:func:`sample_snapshot` runs one sample forward and backward and keeps its spikes per layer, its
per-spike errors φ, μ = α·β and δ (docs/backward.md §7) and the exact membrane trace u(t) of chosen
neurons (docs/model.md §3). :func:`population_statistics` measures sparsity and the classification
latency curve over a set of samples (docs/training.md §5). Everything returned is NumPy.
"""

from __future__ import annotations

import numpy as np
from batscope.engine.analysis import latency_curve, layer_sparsity
from batscope.engine.backend import to_numpy
from batscope.engine.losses import TTFSCrossEntropy
from batscope.engine.network import Network
from batscope.engine.spikes import SpikeTrains

from .telemetry import ErrorFlow, LayerActivity, MembraneWindow, Snapshot

MEMBRANE_POINTS = 400
LATENCY_POINTS = 101


def decoding_mode(loss) -> str:
    """How a loss's predictions read the outputs: ``"ttfs"`` (first spike) or ``"count"``."""
    return "ttfs" if isinstance(loss, TTFSCrossEntropy) else "count"


def last_input_time(inputs: SpikeTrains, t_max: float) -> float:
    """The end of the encoding window of inputs that have no other: their last spike time
    (``t_max`` when there is no positive one)."""
    times = to_numpy(inputs.times)
    finite = times[np.isfinite(times)]
    return float(finite.max()) if finite.size and finite.max() > 0 else float(t_max)


def checked_labels(inputs: SpikeTrains, labels) -> np.ndarray:
    """``labels`` as a NumPy array of one integer class index per input sample, or ValueError."""
    labels = np.asarray(to_numpy(labels))
    n = inputs.batch_size
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be {n} integer class indices (one per input sample), "
            f"got shape {labels.shape} of {labels.dtype}"
        )
    return labels


def _check_sample(inputs: SpikeTrains, sample_index) -> int:
    n = inputs.batch_size
    if isinstance(sample_index, bool) or not isinstance(sample_index, int | np.integer):
        raise TypeError(f"sample_index must be an integer, got {type(sample_index).__name__}")
    if not 0 <= sample_index < n:
        raise ValueError(f"sample_index must be in [0, {n - 1}], got {sample_index}")
    return int(sample_index)


def _activity(net: Network, inp: SpikeTrains, outs: list[SpikeTrains]) -> list[LayerActivity]:
    activity = [
        LayerActivity(
            "input",
            to_numpy(inp.times[0]),
            to_numpy(inp.counts[0]),
            shape=tuple(net.shapes[0]),
            kind="input",
        )
    ]
    for k, (spec, o) in enumerate(zip(net.layers, outs, strict=True)):
        activity.append(
            LayerActivity(
                f"layer {k + 1}",
                to_numpy(o.times[0]),
                to_numpy(o.counts[0]),
                getattr(spec, "theta", float("nan")),  # a pool layer has no neurons
                getattr(spec, "reset", float("nan")),
                getattr(spec, "n_max", o.times.shape[-1]),
                shape=tuple(net.shapes[k + 1]),
                kind=spec.kind,
            )
        )
    return activity


def _membrane(net: Network, t_max: float, layer: int, neurons) -> MembraneWindow:
    """u(t) of ``neurons`` of ``layer`` (1 = first layer, clamped) for the last forward's sample."""
    m_layer = min(max(int(layer), 1), len(net.layers))
    spec = net.layers[m_layer - 1]
    n_sel = net.sizes[m_layer]
    sel = np.array(sorted({int(n) for n in neurons if 0 <= int(n) < n_sel}) or [0])
    t = np.linspace(0.0, t_max, MEMBRANE_POINTS)
    if spec.has_weights:
        u = net.membrane(t, sample=0, layer=m_layer - 1, neurons=sel)
        return MembraneWindow(m_layer, sel, t, np.asarray(u), spec.theta, spec.reset)
    refused = (
        f"Layer {m_layer} is a {spec.size}×{spec.size} pooling layer: it has no membrane "
        "(each output's train is the union of its window's trains). Choose a conv or "
        "dense neuron to trace u(t)."
    )
    return MembraneWindow(m_layer, sel, t, np.zeros((0, t.size)), np.nan, np.nan, refused)


def sample_snapshot(
    network: Network,
    inputs: SpikeTrains,
    labels,
    loss,
    t_max: float,
    sample_index: int = 0,
    layer: int = 1,
    neurons=(0,),
    predict_mode: str = "reference",
    **fields,
) -> Snapshot:
    """A Snapshot of ``inputs[sample_index]``: its spikes in every layer, the per-spike errors of
    the loss against ``labels[sample_index]`` and u(t) of ``neurons`` of ``layer``.

    The sample runs forward and backward once (the weight gradients are discarded; the network's
    last forward is then this sample's). ``fields`` are the Snapshot's other fields (step, epoch,
    sparsity, latency, ...); the counters default to a finished single step.
    """
    labels = checked_labels(inputs, labels)
    i = _check_sample(inputs, sample_index)
    net = network
    inp = SpikeTrains(inputs.times[i : i + 1], inputs.counts[i : i + 1])
    outs = net.forward(inp, t_max)
    _, errors = loss.loss_and_errors(outs[-1], net.xp.asarray(labels[[i]]))
    pred = int(to_numpy(loss.predict(outs[-1], predict_mode))[0])
    net.backward(errors)  # gradients discarded: only the per-spike error flow is shown
    flows = tuple(
        ErrorFlow(k + 1, to_numpy(c.phi[0]), to_numpy(c.mu[0]), to_numpy(c.delta[0]))
        for k, c in enumerate(net.error_components)
    )
    counters = {"step": 0, "epoch": 0, "batch": 0, "n_batches": 1, "epochs": 1}
    return Snapshot(
        **{**counters, **fields},
        sample_index=i,
        label=int(labels[i]),
        prediction=pred,
        t_max=float(t_max),
        activity=tuple(_activity(net, net.inputs, outs)),  # the input as the network read it
        errors=flows,
        membrane=_membrane(net, t_max, layer, neurons),
    )


def population_statistics(
    network: Network,
    inputs: SpikeTrains,
    labels,
    t_max: float,
    t_enc: float,
    mode: str = "count",
    predict_mode: str = "reference",
):
    """``(sparsity per layer, latency curve)`` of the network over ``inputs`` (docs/training.md
    §5): one forward pass of the whole set; ``mode`` is the decoding of :func:`decoding_mode`."""
    outs = network.forward(inputs, t_max)
    counts = [to_numpy(inputs.counts)] + [to_numpy(o.counts) for o in outs]
    names = ["input"] + [f"layer {k + 1}" for k in range(len(outs))]
    # the input has no spike buffer (never "saturated"); a pool's is size²·K_in
    n_max = [None] + [int(o.n_slots) for o in outs]
    sparsity = tuple(layer_sparsity(n, c, m) for n, c, m in zip(names, counts, n_max, strict=True))
    latency = latency_curve(
        to_numpy(outs[-1].times),
        counts[-1],
        checked_labels(inputs, labels),
        np.linspace(0.0, t_max, LATENCY_POINTS),
        mode=mode,
        t_enc=t_enc,
        tie_mode=predict_mode,
        label=f"{mode} decoding",
    )
    return sparsity, latency
