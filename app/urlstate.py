"""The setup in the URL: preset, layer sizes and the main training settings (never live status).

``?preset=convergence&seed=7&lr=0.001&sizes=2`` reproduces a run: the preset is applied first,
then the layer sizes, then the training fields (app-architecture.md §9, TensorFlow Playground's
shareable seed).
"""

from __future__ import annotations

import param
from batscope.training.state import LayerSpec, NetworkSpec, TrainingConfig

from .presets import apply_preset, load_preset

#: TrainingConfig fields mirrored in the URL query (parameter -> query key)
TRAINING_KEYS = {
    "task": "task",
    "seed": "seed",
    "lr": "lr",
    "epochs": "epochs",
    "batch_size": "batch",
    "optimizer": "optimizer",
    "loss": "loss",
    "t_max": "t_max",
    "backend": "backend",
}


def sizes_text(network: NetworkSpec) -> str:
    return "-".join(str(n) for n in network.sizes)


def set_sizes(network: NetworkSpec, text: str) -> None:
    """Resize / add / drop layers to match ``"800-10"`` (new layers copy the one before)."""
    try:
        sizes = [int(s) for s in text.split("-")]
    except ValueError:
        raise ValueError(f"sizes must look like '800-10', got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {text!r}")
    layers = list(network.layers)
    specs = []
    for i, n in enumerate(sizes):
        src = layers[min(i, len(layers) - 1)]
        spec = layers[i] if i < len(layers) else LayerSpec.from_dict(src.to_dict())
        spec.size = n
        specs.append(spec)
    network.layers = specs


class UrlState(param.Parameterized):
    """The URL-only part of the setup: which preset, and the layer sizes."""

    preset = param.String("", doc="Preset applied before the other URL fields")
    sizes = param.String("", doc="Layer sizes, e.g. 800-10")

    def __init__(self, network: NetworkSpec, training: TrainingConfig, **params):
        super().__init__(**params)
        self.network, self.training = network, training
        self.sizes = sizes_text(network)
        self._applied = ""
        self._busy = False
        network.param.watch(self._from_network, "revision")
        self.param.watch(self._apply, ["preset", "sizes"])

    def _from_network(self, event=None):
        if not self._busy:
            self.sizes = sizes_text(self.network)

    def _apply(self, *events):
        changed = {e.name for e in events}
        self._busy = True
        try:
            if "preset" in changed and self.preset and self.preset != self._applied:
                self._applied = self.preset
                apply_preset(load_preset(self.preset), self.network, self.training)
            if "sizes" in changed and self.sizes and self.sizes != sizes_text(self.network):
                set_sizes(self.network, self.sizes)
        finally:
            self._busy = False
        self._from_network()


def url_dict(state: UrlState) -> dict:
    """The query the setup produces (what ``pn.state.location.sync`` writes)."""
    d = {"preset": state.preset, "sizes": state.sizes}
    d.update({key: getattr(state.training, p) for p, key in TRAINING_KEYS.items()})
    return d


def apply_url_dict(d: dict, state: UrlState) -> None:
    """Apply a query dict in the URL's order: preset, sizes, then training fields."""
    state.param.update(**{k: str(d[k]) for k in ("preset", "sizes") if k in d})
    state.training.param.update(**{p: d[key] for p, key in TRAINING_KEYS.items() if key in d})
