"""Layer types: ``Dense``, ``Conv2D`` and ``Pool2D`` (docs/model.md §2, docs/conv-pool.md).

A layer type owns its connectivity: the shape it produces from its input shape, its weight
shape, and which kernels of a backend module (engine.cpu or engine.gpu) compute its forward
pass, its weight gradient and the errors of its presynaptic spikes. The neuron maths is shared
(engine/cpu_neuron.py). Shapes are ``(n,)`` for a flat layer and ``(H, W, C)`` for an image-like
one, whose neurons are flattened channels-last, row-major: index (row W + col) C + c. A Dense
layer after a conv or pool layer reads that order.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .init import Normal, Uniform, initializer_from_dict
from .spikes import SpikeTrains


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be finite and > 0, got {value}")
    return value


def _count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _image(shape, what: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{what} needs an (H, W, C) input, got shape {tuple(shape)}")
    return tuple(shape)


def conv_output_shape(in_shape, channels: int, kernel_size: int) -> tuple[int, int, int]:
    """(H - k + 1, W - k + 1, channels) of a valid, stride-1 convolution (docs/conv-pool.md §2)."""
    h, w, _ = _image(in_shape, "Conv2D")
    if kernel_size > h or kernel_size > w:
        raise ValueError(f"Conv2D kernel_size {kernel_size} exceeds its {h}x{w} input")
    return (h - kernel_size + 1, w - kernel_size + 1, channels)


def pool_output_shape(in_shape, size: int) -> tuple[int, int, int]:
    """(H // size, W // size, C) of size x size, stride-size pooling (docs/conv-pool.md §3)."""
    h, w, c = _image(in_shape, "Pool2D")
    if size > h or size > w:
        raise ValueError(f"Pool2D size {size} exceeds its {h}x{w} input")
    return (h // size, w // size, c)


class LayerPass(NamedTuple):
    """What a layer's forward keeps for its backward: ``udot`` (membrane slope per spike, None
    for a pool layer), ``events`` (keyword arguments of the backend's kernels: merged inputs on
    the CPU) and ``source`` (a pool layer's presynaptic slot per output slot)."""

    udot: object
    events: dict
    source: object = None


class NeuronLayer:
    """LIF neurons with exact spike times: synaptic constant ``tau_s`` [s] (membrane
    ``tau = 2 tau_s``), threshold ``theta``, reset amount ``reset`` (Δθ, default ``theta``),
    spike buffer ``n_max`` (S) and a weight initialiser."""

    has_weights = True

    def _set_neuron(self, tau_s, theta, reset, n_max, init):
        self.tau_s = _positive("tau_s", tau_s)
        self.theta = _positive("theta", theta)
        self.reset = self.theta if reset is None else _positive("reset", reset)
        self.n_max = _count("n_max", n_max)
        init = Uniform(-1.0, 1.0) if init is None else init
        if not isinstance(init, (Uniform, Normal)):
            raise TypeError(f"init must be Uniform or Normal, got {type(init).__name__}")
        self.init = init

    @property
    def tau(self) -> float:
        """Membrane time constant, tau = 2 tau_s (hard constraint of the closed form)."""
        return 2.0 * self.tau_s

    def out_slots(self, in_slots: int) -> int:
        return self.n_max

    def _neuron_dict(self) -> dict:
        return {
            "tau_s": self.tau_s,
            "theta": self.theta,
            "reset": self.reset,
            "n_max": self.n_max,
            "init": self.init.to_dict(),
        }

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def _merge(self, kernels, name, pre, *args) -> dict:
        merge = getattr(kernels, name, None)  # a backend that can merge once shares it
        return {} if merge is None else {"events": merge(pre.times, pre.counts, *args)}


class Dense(NeuronLayer):
    """Fully connected LIF layer of ``n`` neurons; weights ``[n, n_pre]``."""

    kind = "dense"

    def __init__(self, n, tau_s, theta, reset=None, n_max=30, init=None):
        self.n = _count("n", n)
        self._set_neuron(tau_s, theta, reset, n_max, init)

    def output_shape(self, in_shape) -> tuple:
        return (self.n,)

    def weight_shape(self, in_shape) -> tuple:
        return (self.n, math.prod(in_shape))

    def forward(self, kernels, pre: SpikeTrains, w, group, t_max, in_shape):
        """Spike times of the layer (docs/forward.md §5): ``(SpikeTrains, LayerPass)``."""
        events = self._merge(kernels, "merge_inputs", pre, self.tau)
        t, c, ud = kernels.dense_forward(
            pre.times, pre.counts, w[None], group, self.tau_s, self.theta, self.reset,
            self.n_max, t_max, **events,
        )  # fmt: skip
        return SpikeTrains(t, c), LayerPass(ud, events)

    def backward(self, kernels, pre, w, group, post, kept: LayerPass, phi, need_pre, in_shape):
        """``(delta, dL/dW summed over the batch, phi_pre or None)`` (docs/backward.md §6)."""
        delta, grad, phi_pre = kernels.dense_backward(
            pre.times, pre.counts, w[None], group, post.times, post.counts, kept.udot, phi,
            self.tau_s, self.reset, need_pre, **kept.events,
        )  # fmt: skip
        return delta, grad[0], phi_pre

    def dense_rows(self, w, in_shape, neurons) -> np.ndarray:
        """The weight rows ``[len(neurons), n_pre]`` of the chosen neurons."""
        return np.asarray(w)[neurons]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "n": self.n, **self._neuron_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Dense:
        d = _layer_dict(d, cls.kind, ("n", "tau_s", "theta"))
        init = d.get("init")
        return cls(
            d["n"],
            d["tau_s"],
            d["theta"],
            reset=d.get("reset"),
            n_max=d.get("n_max", 30),
            init=None if init is None else initializer_from_dict(init),
        )

    def __repr__(self) -> str:
        return (
            f"Dense(n={self.n}, tau_s={self.tau_s}, theta={self.theta}, reset={self.reset}, "
            f"n_max={self.n_max}, init={self.init!r})"
        )


class Conv2D(NeuronLayer):
    """Convolutional LIF layer (docs/conv-pool.md §2): valid cross-correlation, stride 1, no bias,
    ``channels`` output channels of ``kernel_size`` x ``kernel_size`` shared weights, shape
    ``(channels, k, k, C_in)``. Input (H, W, C_in) -> output (H - k + 1, W - k + 1, channels)."""

    kind = "conv2d"

    def __init__(self, channels, kernel_size, tau_s, theta, n_max, reset=None, init=None):
        self.channels = _count("channels", channels)
        self.kernel_size = _count("kernel_size", kernel_size)
        self._set_neuron(tau_s, theta, reset, n_max, init)

    def output_shape(self, in_shape) -> tuple:
        return conv_output_shape(in_shape, self.channels, self.kernel_size)

    def weight_shape(self, in_shape) -> tuple:
        k = self.kernel_size
        return (self.channels, k, k, _image(in_shape, "Conv2D")[2])

    def forward(self, kernels, pre: SpikeTrains, w, group, t_max, in_shape):
        """Spike times (docs/forward.md §5 on each neuron's receptive field,
        docs/conv-pool.md §2)."""
        events = self._merge(
            kernels, "merge_receptive_fields", pre, in_shape, self.kernel_size, self.tau
        )
        t, c, ud = kernels.conv_forward(
            pre.times, pre.counts, w[None], group, in_shape, self.tau_s, self.theta, self.reset,
            self.n_max, t_max, **events,
        )  # fmt: skip
        return SpikeTrains(t, c), LayerPass(ud, events)

    def backward(self, kernels, pre, w, group, post, kept: LayerPass, phi, need_pre, in_shape):
        """``(delta, shared-weight gradient summed over positions and batch, phi_pre)``."""
        delta, grad, phi_pre = kernels.conv_backward(
            pre.times, pre.counts, w[None], group, in_shape, post.times, post.counts,
            kept.udot, phi, self.tau_s, self.reset, need_pre, **kept.events,
        )  # fmt: skip
        return delta, grad[0], phi_pre

    def dense_rows(self, w, in_shape, neurons) -> np.ndarray:
        """The equivalent dense weight rows ``[len(neurons), H W C_in]`` (zero outside each
        neuron's receptive field): for the membrane trace and for exactness tests."""
        w = np.asarray(w)
        h, wd, c_in = in_shape
        k = self.kernel_size
        w_out = wd - k + 1
        neurons = np.atleast_1d(neurons)
        rows = np.zeros((neurons.size, h * wd * c_in), dtype=w.dtype)
        for a, j in enumerate(neurons):
            pos, co = divmod(int(j), self.channels)
            r, c = divmod(pos, w_out)
            for dr in range(k):
                i0 = ((r + dr) * wd + c) * c_in
                rows[a, i0 : i0 + k * c_in] = w[co, dr].reshape(-1)
        return rows

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "channels": self.channels,
            "kernel_size": self.kernel_size,
            **self._neuron_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Conv2D:
        d = _layer_dict(d, cls.kind, ("channels", "kernel_size", "tau_s", "theta", "n_max"))
        init = d.get("init")
        return cls(
            d["channels"],
            d["kernel_size"],
            d["tau_s"],
            d["theta"],
            d["n_max"],
            reset=d.get("reset"),
            init=None if init is None else initializer_from_dict(init),
        )

    def __repr__(self) -> str:
        return (
            f"Conv2D(channels={self.channels}, kernel_size={self.kernel_size}, "
            f"tau_s={self.tau_s}, theta={self.theta}, n_max={self.n_max}, reset={self.reset}, "
            f"init={self.init!r})"
        )


class Pool2D:
    """Spike-aggregation pooling (docs/conv-pool.md §3): ``size`` x ``size`` windows, stride
    ``size``; each output's train is the union of its window's trains (buffer size^2 K_in). No
    weights; errors go unchanged to their source spikes; a dropped odd edge gets zero error."""

    kind = "pool2d"
    has_weights = False

    def __init__(self, size):
        self.size = _count("size", size)

    def output_shape(self, in_shape) -> tuple:
        return pool_output_shape(in_shape, self.size)

    def weight_shape(self, in_shape):
        return None

    def out_slots(self, in_slots: int) -> int:
        return self.size * self.size * in_slots

    def forward(self, kernels, pre: SpikeTrains, w, group, t_max, in_shape):
        t, c, source = kernels.pool_forward(pre.times, pre.counts, in_shape, self.size)
        return SpikeTrains(t, c), LayerPass(None, {}, source)

    def backward(self, kernels, pre, w, group, post, kept: LayerPass, phi, need_pre, in_shape):
        """``(delta = phi, None, phi_pre)``: a pool has no reset path and no weights."""
        phi_pre = None
        if need_pre:
            phi_pre = kernels.pool_backward(phi, post.counts, kept.source, pre.times.shape)
        return phi, None, phi_pre

    def to_dict(self) -> dict:
        return {"kind": self.kind, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> Pool2D:
        return cls(_layer_dict(d, cls.kind, ("size",))["size"])

    def __eq__(self, other) -> bool:
        return isinstance(other, Pool2D) and self.size == other.size

    def __repr__(self) -> str:
        return f"Pool2D(size={self.size})"


LAYER_TYPES = {cls.kind: cls for cls in (Dense, Conv2D, Pool2D)}


def _layer_dict(d, kind: str, required) -> dict:
    if not isinstance(d, dict):
        raise TypeError(f"layer must be a dict, got {type(d).__name__}")
    if d.get("kind", kind) != kind:
        raise ValueError(f"layer kind must be {kind!r}, got {d.get('kind')!r}")
    missing = [k for k in required if k not in d]
    if missing:
        raise ValueError(f"layer is missing {missing}")
    return d


def layer_from_dict(d: dict):
    """The layer of a ``to_dict()``; a dict without ``kind`` is a Dense layer (old files)."""
    if not isinstance(d, dict):
        raise TypeError(f"layer must be a dict, got {type(d).__name__}")
    kind = d.get("kind", Dense.kind)
    if kind not in LAYER_TYPES:
        raise ValueError(f"layer kind must be one of {sorted(LAYER_TYPES)}, got {kind!r}")
    return LAYER_TYPES[kind].from_dict(d)
