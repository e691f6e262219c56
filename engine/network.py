"""Network: a stack of layers (Dense, Conv2D, Pool2D) with the exact forward pass and BATS
gradients.

The forward pass is the event loop of docs/forward.md §5, the backward pass docs/backward.md §6
layer by layer in reverse. Shapes flow from the input through every layer (engine/layers.py); each
layer type computes its own connectivity. Arrays live on the network's backend (NumPy or CuPy) in
its dtype.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import resolve_backend, to_numpy, xp_for
from .kernels import get_kernels
from .layers import Pool2D, layer_from_dict
from .spikes import SpikeTrains, check_trains, resolve_dtype

FORMAT = "batscope-network"
VERSION = 1  # conv / pool layers and input_shape are additions: older files load unchanged
# A crossing is "grazing" when u_dot < GRAZING_REL * theta/tau; gradients scale as 1/u_dot
# (docs/implementation.md §3).
GRAZING_REL = 1e-3


class ErrorComponents:
    """Per-spike errors of one layer, each ``[B, N, S]`` (docs/backward.md §7), 0 in empty slots.

    ``phi``: inter-neuron error (from the loss or the next layer); ``mu = alpha * beta``: error
    through the neuron's own later spikes (reset path); ``delta = phi + mu``: total dL/dt_k.
    Behaves like the tuple ``(phi, mu, delta)``; ``mu`` is computed on first access.
    """

    __slots__ = ("phi", "delta", "_mu")
    _fields = ("phi", "mu", "delta")

    def __init__(self, phi, mu=None, delta=None):
        self.phi = phi
        self.delta = delta
        self._mu = mu

    @property
    def mu(self):
        if self._mu is None:
            self._mu = self.delta - self.phi
        return self._mu

    def __iter__(self):
        return iter((self.phi, self.mu, self.delta))

    def __getitem__(self, k):
        return (self.phi, self.mu, self.delta)[k]

    def __len__(self) -> int:
        return 3

    def __repr__(self) -> str:
        return f"ErrorComponents(shape={tuple(self.phi.shape)})"


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer or None, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


def _input_shape(n_inputs, input_shape) -> tuple:
    if (n_inputs is None) == (input_shape is None):
        raise TypeError("give exactly one of n_inputs and input_shape")
    if n_inputs is not None:
        if isinstance(n_inputs, bool) or not isinstance(n_inputs, (int, np.integer)):
            raise TypeError(f"n_inputs must be an integer, got {type(n_inputs).__name__}")
        if n_inputs < 1:
            raise ValueError(f"n_inputs must be >= 1, got {n_inputs}")
        return (int(n_inputs),)
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) not in (1, 3):
        raise ValueError(f"input_shape must be (n,) or (H, W, C), got {input_shape!r}")
    for s in input_shape:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise ValueError(f"input_shape must hold positive integers, got {input_shape!r}")
    return tuple(int(s) for s in input_shape)


class Network:
    """Feed-forward spiking network ``input -> layers[0] -> ... -> layers[-1]``.

    The input is ``n_inputs`` neurons, or an image-like ``input_shape=(H, W, C)`` flattened
    channels-last (pixel (row, col) of a one-channel image is input neuron row W + col).
    ``layers``: any sequence of Dense, Conv2D and Pool2D. ``backend`` "cpu" | "gpu" | "auto";
    ``dtype`` "float32" | "float64"; weights drawn with ``np.random.default_rng(seed)``, layer by
    layer in order.
    """

    def __init__(
        self, n_inputs=None, layers=None, backend="cpu", dtype="float64", seed=0, *,
        input_shape=None,
    ):  # fmt: skip
        self.input_shape = _input_shape(n_inputs, input_shape)
        if not isinstance(layers, (list, tuple)) or len(layers) == 0:
            raise ValueError("layers must be a non-empty list of layers")
        shapes = [self.input_shape]
        for k, layer in enumerate(layers):
            if not hasattr(layer, "output_shape") or not hasattr(layer, "has_weights"):
                raise TypeError(
                    f"layers[{k}] must be a Dense, Conv2D or Pool2D layer, "
                    f"got {type(layer).__name__}"
                )
            try:
                shapes.append(layer.output_shape(shapes[-1]))
            except ValueError as exc:
                raise ValueError(f"layers[{k}]: {exc}") from exc
        self.n_inputs = math.prod(self.input_shape)
        self.layers = list(layers)
        self.shapes = shapes  # input shape, then each layer's output shape
        self.dtype = resolve_dtype(dtype)
        self.seed = _check_seed(seed)
        self._set_backend(backend)
        self._weights = []
        self.reinitialize()

    # ---------------------------------------------------------------------------- set-up
    def _set_backend(self, backend):
        self.backend = resolve_backend(backend)
        self.xp = xp_for(self.backend)
        self._kernels = get_kernels(self.backend)
        self._clear()

    def _clear(self):
        self.inputs = None
        self.outputs = None
        self.udot = None
        self.saturation = None
        self.t_max = None
        self.error_components = None
        self.input_errors = None
        self._kept = None

    @property
    def sizes(self) -> list[int]:
        """Neurons per layer including the input: ``[n_inputs, n_1, ..., n_L]``."""
        return [math.prod(s) for s in self.shapes]

    def weight_shapes(self) -> list[tuple]:
        """Shapes of the layers that have weights, in order (``[n_post, n_pre]`` for Dense,
        ``(C_out, k, k, C_in)`` for Conv2D)."""
        return [
            layer.weight_shape(s)
            for layer, s in zip(self.layers, self.shapes, strict=False)
            if layer.has_weights
        ]

    def _weight_index(self) -> list:
        """Per layer, its index in ``weights`` (None for a layer without weights)."""
        out, n = [], 0
        for layer in self.layers:
            out.append(n if layer.has_weights else None)
            n += bool(layer.has_weights)
        return out

    def reinitialize(self, seed=None):
        """Redraw every weight; ``seed=None`` reuses the network's seed, an int replaces it."""
        if seed is not None:
            self.seed = _check_seed(seed)
        rng = np.random.default_rng(self.seed)
        trainable = [layer for layer in self.layers if layer.has_weights]
        self._weights = [
            self.xp.asarray(layer.init.init(rng, shape, self.dtype))
            for layer, shape in zip(trainable, self.weight_shapes(), strict=True)
        ]
        self._clear()

    @property
    def weights(self) -> list:
        """The weight arrays of the layers that have weights (a new list of the live arrays:
        in-place updates by an optimiser act on the network). Assigning a list validates and
        copies."""
        return list(self._weights)

    @weights.setter
    def weights(self, new):
        self._weights = self._validated_weights(new)

    def _validated_weights(self, new) -> list:
        if not isinstance(new, (list, tuple)):
            raise TypeError(f"weights must be a list of arrays, got {type(new).__name__}")
        shapes = self.weight_shapes()
        if len(new) != len(shapes):
            raise ValueError(f"weights must hold {len(shapes)} arrays, got {len(new)}")
        out = []
        for k, (w, shape) in enumerate(zip(new, shapes, strict=True)):
            w_np = to_numpy(w)
            if w_np.dtype.kind not in "fiu":
                raise TypeError(f"weights[{k}] must be numeric, got dtype {w_np.dtype}")
            if w_np.shape != shape:
                raise ValueError(f"weights[{k}] has shape {w_np.shape}, expected {shape}")
            if not np.isfinite(w_np).all():
                raise ValueError(f"weights[{k}] contains NaN or inf")
            out.append(self.xp.array(w_np, dtype=self.dtype, copy=True))
        return out

    def to(self, backend) -> Network:
        """Move the weights to another backend (forward state is cleared); returns self."""
        host = [to_numpy(w) for w in self._weights]
        self._set_backend(backend)
        self._weights = [self.xp.asarray(w) for w in host]
        return self

    # ---------------------------------------------------------------------------- forward
    def _group(self, batch: int):
        return self.xp.zeros(batch, dtype=np.int32)

    def forward(self, inp: SpikeTrains, t_max: float) -> list[SpikeTrains]:
        """Simulate every layer up to ``t_max`` [s]; returns one SpikeTrains per layer."""
        if not isinstance(inp, SpikeTrains):
            raise TypeError(f"inp must be a SpikeTrains, got {type(inp).__name__}")
        check_trains(inp, "inp")  # however it was built: the kernels index by its counts
        if inp.times.ndim != 3 or inp.n_neurons != self.n_inputs:
            raise ValueError(
                f"inp has {inp.n_neurons} neurons (shape {tuple(inp.times.shape)}), "
                f"the network expects n_inputs={self.n_inputs}"
            )
        if isinstance(t_max, bool) or not isinstance(t_max, (int, float, np.integer, np.floating)):
            raise TypeError(f"t_max must be a number, got {type(t_max).__name__}")
        t_max = float(t_max)
        if not (math.isfinite(t_max) and t_max > 0):
            raise ValueError(f"t_max must be finite and > 0, got {t_max}")
        xp = self.xp
        times = xp.ascontiguousarray(xp.asarray(_on(inp.times, self.backend), dtype=self.dtype))
        counts = xp.ascontiguousarray(xp.asarray(_on(inp.counts, self.backend), dtype=np.int32))
        pre = SpikeTrains(times, counts)
        group = self._group(pre.batch_size)
        outputs, kept = [], []
        wi = self._weight_index()
        for k, layer in enumerate(self.layers):
            w = None if wi[k] is None else self._weights[wi[k]]
            pre, state = layer.forward(self._kernels, pre, w, group, t_max, self.shapes[k])
            outputs.append(pre)
            kept.append(state)
        self._clear()
        self.inputs = SpikeTrains(times, counts)
        self.outputs = outputs
        self.udot = [s.udot for s in kept]
        self._kept = kept
        self.t_max = t_max
        self.saturation = [
            0 if isinstance(layer, Pool2D) else int((o.counts == layer.n_max).sum())
            for o, layer in zip(outputs, self.layers, strict=True)
        ]
        return list(outputs)

    # ---------------------------------------------------------------------------- backward
    def backward(self, errors, input_errors: bool = False) -> list:
        """Weight gradients (summed over the batch) for errors dL/dt of the output spikes.

        ``errors`` is ``[B, N_out, K_out]``; empty slots are ignored, the array is not mutated.
        Fills ``error_components`` (per layer) and, with ``input_errors=True``, ``input_errors``
        (dL/dt of every input spike, ``[B, n_inputs, K_in]``).
        """
        if self.outputs is None:
            raise RuntimeError("backward() needs a forward() first")
        if not isinstance(input_errors, (bool, np.bool_)):
            raise TypeError(f"input_errors must be a bool, got {type(input_errors).__name__}")
        xp = self.xp
        out = self.outputs[-1]
        if not hasattr(errors, "shape"):
            try:
                errors = np.asarray(errors, dtype=float)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"errors must be a numeric array ({exc})") from exc
        if np.dtype(errors.dtype).kind not in "fiu":
            raise TypeError(f"errors must be a numeric array, got dtype {errors.dtype}")
        if tuple(errors.shape) != tuple(out.times.shape):
            raise ValueError(
                f"errors has shape {tuple(errors.shape)}, expected {tuple(out.times.shape)} "
                "[batch, output neurons, output slots]"
            )
        phi = xp.asarray(_on(errors, self.backend), dtype=self.dtype)
        valid = xp.isfinite(out.times)
        if not bool((xp.isfinite(phi) | ~valid).all()):
            raise ValueError("errors contains NaN or inf in an emitted spike's slot")
        phi = xp.where(valid, phi, 0).astype(self.dtype)
        group = self._group(out.batch_size)
        n_layers = len(self.layers)
        wi = self._weight_index()
        grads = [None] * len(self._weights)
        comps = [None] * n_layers
        phi_in = None
        for k in range(n_layers - 1, -1, -1):
            layer = self.layers[k]
            pre = self.inputs if k == 0 else self.outputs[k - 1]
            w = None if wi[k] is None else self._weights[wi[k]]
            delta, grad, phi_pre = layer.backward(
                self._kernels, pre, w, group, self.outputs[k], self._kept[k], phi,
                k > 0 or bool(input_errors), self.shapes[k],
            )  # fmt: skip
            if wi[k] is not None:
                grads[wi[k]] = grad
            comps[k] = ErrorComponents(phi, delta=delta)
            phi = phi_pre
            if k == 0:
                phi_in = phi_pre
        self.error_components = comps
        self.input_errors = phi_in
        return grads

    # ---------------------------------------------------------------------------- inspection
    def stats(self) -> list[dict]:
        """Per layer: spikes per sample, active fraction, saturated neurons, min u_dot, grazing
        (a pool layer has no membrane: no saturation, min u_dot NaN, no grazing)."""
        if self.outputs is None:
            raise RuntimeError("stats() needs a forward() first")
        res = []
        for layer, o, ud in zip(self.layers, self.outputs, self.udot, strict=True):
            counts = to_numpy(o.counts)
            if ud is None:
                slopes, thr, full = np.zeros(0), 0.0, np.zeros(counts.shape, dtype=bool)
            else:
                slopes = to_numpy(ud)[np.isfinite(to_numpy(o.times))]
                thr = GRAZING_REL * layer.theta / layer.tau
                full = counts == layer.n_max
            res.append(
                {
                    "spikes_per_sample": float(counts.sum(axis=1).mean()),
                    "active_fraction": float((counts > 0).mean()),
                    "saturated": int(full.sum()),
                    "saturated_fraction": float(full.mean()),
                    "min_udot": float(slopes.min()) if slopes.size else float("nan"),
                    "grazing": int((slopes < thr).sum()),
                }
            )
        return res

    def membrane(self, t, sample=0, layer=-1, neurons=None) -> np.ndarray:
        """Exact u(t) ``[n_sel, len(t)]`` of the chosen neurons of the last forward (SRM form).

        Built from the stored spikes: once a neuron's buffer is full (count == n_max) its later
        spikes were dropped, so after the last stored spike u(t) may exceed theta.
        """
        from .membrane import membrane_potential

        if self.outputs is None:
            raise RuntimeError("membrane() needs a forward() first")
        n_layers = len(self.layers)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an integer, got {type(layer).__name__}")
        if not -n_layers <= layer < n_layers:
            raise ValueError(f"layer must be in [{-n_layers}, {n_layers}), got {layer}")
        layer = int(layer) % n_layers
        batch = self.inputs.batch_size
        if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)):
            raise TypeError(f"sample must be an integer, got {type(sample).__name__}")
        if not 0 <= sample < batch:
            raise ValueError(f"sample must be in [0, {batch}), got {sample}")
        spec = self.layers[layer]
        if not spec.has_weights:
            raise ValueError(f"layer {layer} ({spec.kind}) has no membrane: it only merges spikes")
        n = self.sizes[layer + 1]
        if neurons is None:
            neurons = np.arange(n)
        neurons = np.atleast_1d(np.asarray(neurons))
        if neurons.dtype.kind not in "iu" or neurons.ndim != 1:
            raise TypeError("neurons must be an integer index or a 1-D integer array")
        if neurons.size and (neurons.min() < 0 or neurons.max() >= n):
            raise ValueError(f"neurons must be in [0, {n})")
        pre = self.inputs if layer == 0 else self.outputs[layer - 1]
        post = self.outputs[layer]
        return membrane_potential(
            t,
            to_numpy(pre.times[sample]),
            to_numpy(pre.counts[sample]),
            spec.dense_rows(
                to_numpy(self._weights[self._weight_index()[layer]]), self.shapes[layer], neurons
            ),
            to_numpy(post.times[sample])[neurons],
            self.layers[layer].tau_s,
            self.layers[layer].reset,
        )

    # ---------------------------------------------------------------------------- persistence
    def config(self) -> dict:
        """JSON-serialisable description (no weights)."""
        d = {
            "format": FORMAT,
            "version": VERSION,
            "n_inputs": self.n_inputs,
            "layers": [layer.to_dict() for layer in self.layers],
            "dtype": self.dtype.name,
            "seed": self.seed,
        }
        if len(self.input_shape) == 3:
            d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_config(cls, d: dict, backend="cpu") -> Network:
        """A freshly initialised network from ``config()``; ValueError on a bad config."""
        if not isinstance(d, dict):
            raise TypeError(f"config must be a dict, got {type(d).__name__}")
        if d.get("format", FORMAT) != FORMAT:
            raise ValueError(f"config format must be {FORMAT!r}, got {d.get('format')!r}")
        if d.get("version", VERSION) != VERSION:
            raise ValueError(
                f"config version {d.get('version')!r} is not supported (expected {VERSION})"
            )
        for key in ("n_inputs", "layers"):
            if key not in d:
                raise ValueError(f"config is missing {key!r}")
        if not isinstance(d["layers"], list):
            raise ValueError("config 'layers' must be a list")
        layers = [layer_from_dict(x) for x in d["layers"]]
        shape = d.get("input_shape")
        if shape is not None:
            if not isinstance(shape, list):
                raise ValueError("config 'input_shape' must be a list")
            if math.prod(shape) != d["n_inputs"]:
                raise ValueError(f"config input_shape {shape} does not hold n_inputs neurons")
        return cls(
            None if shape is not None else d["n_inputs"],
            layers,
            backend=backend,
            dtype=d.get("dtype", "float64"),
            seed=d.get("seed", 0),
            input_shape=None if shape is None else tuple(shape),
        )

    def save(self, path) -> None:
        """Write ``<stem>.npz`` (weights) and ``<stem>.json`` (config), each atomically."""
        from .io import save_network

        save_network(self, path)

    @classmethod
    def load(cls, path, backend="cpu", **limits) -> Network:
        """Rebuild a network saved with :meth:`save` (ValueError on a bad or corrupt file).

        ``limits``: ``max_layers``, ``max_weights``, ``max_bytes`` of ``engine.io.load_network``,
        checked before anything is allocated."""
        from .io import load_network

        return load_network(cls, path, backend, **limits)

    def load_weights(self, path) -> None:
        """Replace the weights from a saved ``.npz``; on any error the network is untouched."""
        from .io import read_weights

        self.weights = read_weights(path, self.weight_shapes())
        self._clear()

    def __repr__(self) -> str:
        arch = "-".join("x".join(str(n) for n in s) for s in self.shapes)
        return f"Network({arch}, backend={self.backend!r}, dtype={self.dtype.name!r})"

    # ---------------------------------------------------------------------------- NIR
    def to_nir(self):
        """This network as a ``nir.NIRGraph`` (Linear + CubaLIF per layer; engine/nir.py)."""
        from .nir import network_to_nir

        return network_to_nir(self)

    @classmethod
    def from_nir(cls, graph, backend="cpu", dtype=None, n_max=None) -> Network:
        """A network from a ``nir.NIRGraph`` or a ``.nir`` file path (engine/nir.py)."""
        from .nir import network_from_nir

        return network_from_nir(cls, graph, backend=backend, dtype=dtype, n_max=n_max)


def _on(a, backend):
    """``a`` as an array of the backend's module (host copy for the CPU)."""
    if backend == "cpu":
        return to_numpy(a)
    return a
