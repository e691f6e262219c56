"""The setup in the URL: preset, layer sizes and the main training settings (never live status).

``?preset=convergence&seed=7&lr=0.001&sizes=2`` reproduces a run: the preset is applied first,
then the layer sizes, then the training fields (app-architecture.md §9, TensorFlow Playground's
shareable seed).

The URL is untrusted and read once, when the session is built: its length is checked before
it is parsed, the whole setup it asks for is checked against the schema
(:func:`batscope.training.limits.validate_config`) before any of it is applied, and a refused URL
changes nothing and says why in :attr:`UrlState.message`. From then on the URL only mirrors
the state (it is written, never read back), so its cost is bounded whatever it says.
"""

from __future__ import annotations

import copy
import json
import re
from urllib.parse import parse_qsl, urlencode

import param
from batscope.training.limits import MAX_QUERY_CHARS, MAX_URL_VALUE_CHARS, escape, validate_config
from batscope.training.state import (
    MAX_LAYERS,
    LayerSpec,
    NetworkSpec,
    TrainingConfig,
    apply_run_config,
    run_config,
)

from .presets import apply_preset, list_presets, load_preset

#: TrainingConfig fields mirrored in the URL query (parameter -> query key)
TRAINING_KEYS = {
    "task": "task",
    "data": "data",
    "seed": "seed",
    "lr": "lr",
    "epochs": "epochs",
    "batch_size": "batch",
    "optimizer": "optimizer",
    "loss": "loss",
    "t_max": "t_max",
    "backend": "backend",
}
URL_KEYS = ("preset", "sizes", *TRAINING_KEYS.values(), "lesson", "step")
_INTEGER = re.compile(r"[+-]?[0-9]+")


_LAYER_TOKEN = re.compile(r"([0-9]+)|c([0-9]+)k([0-9]+)|p([0-9]+)")


def layer_token(spec: LayerSpec) -> str:
    """One layer in the URL: ``300`` (dense, 300 neurons), ``c15k5`` (conv, 15 channels of 5×5
    kernels) or ``p2`` (2×2 pooling)."""
    if spec.kind == "conv":
        return f"c{spec.channels}k{spec.kernel_size}"
    if spec.kind == "pool":
        return f"p{spec.pool_size}"
    return str(spec.size)


def sizes_text(network: NetworkSpec) -> str:
    """The layers as ``c15k5-p2-c40k5-p2-300-10`` (:func:`layer_token`)."""
    return "-".join(layer_token(s) for s in network.layers)


def parse_sizes(text: str) -> list[dict]:
    """``"c15k5-p2-300-10"`` -> one dict of structure fields per layer (``{"size": 300}``,
    ``{"kind": "conv", "channels": 15, "kernel_size": 5}``, ``{"kind": "pool",
    "pool_size": 2}``); the layer count is checked before any part is read."""
    parts = str(text).split("-")
    if len(parts) > MAX_LAYERS:
        raise ValueError(f"sizes: at most {MAX_LAYERS} layers, not {len(parts)}")
    out = []
    for part in parts:
        m = _LAYER_TOKEN.fullmatch(part)
        if m is None:
            raise ValueError(
                f"sizes must look like '800-10' or 'c15k5-p2-300-10', got {str(text)[:40]!r}"
            )
        n, c, k, p = (None if g is None else int(g) for g in m.groups())
        if n is not None:
            out.append({"size": n})
        elif c is not None:
            out.append({"kind": "conv", "channels": c, "kernel_size": k})
        else:
            out.append({"kind": "pool", "pool_size": p})
    return out


def layer_with(base: dict, structure: dict) -> dict:
    """A layer dict of ``structure`` 's kind and sizes with ``base`` 's neuron fields (τs, θ,
    S, init; LayerSpec's defaults where ``base`` is a pool layer)."""
    kind = structure.get("kind", "dense")
    if kind == "pool":
        return dict(structure)
    defaults = LayerSpec()
    neuron = {f: base.get(f, getattr(defaults, f)) for f in LayerSpec.NEURON_FIELDS}
    return {**structure, **neuron}


def set_sizes(network: NetworkSpec, text: str) -> None:
    """Rebuild the layers to match ``"c15k5-p2-300-10"``: each keeps the neuron fields of the
    layer at its place (new layers copy the last one); all checked before any changes."""
    structure = parse_sizes(text)
    old = [{f: getattr(s, f) for f in LayerSpec.FIELDS} for s in network.layers]
    layers = [
        LayerSpec.from_dict(layer_with(old[min(i, len(old) - 1)], d), f"sizes[{i}]")
        for i, d in enumerate(structure)
    ]
    network.set_layers(layers)


def read_query(search: str) -> dict[str, str]:
    """The URL's known keys from ``?a=1&b=2``, refused when longer than the limits."""
    text = search[1:] if search.startswith("?") else search
    if len(text) > MAX_QUERY_CHARS:
        raise ValueError(f"the URL query has {len(text)} characters; at most {MAX_QUERY_CHARS}")
    query = {}
    for key, value in parse_qsl(text, max_num_fields=2 * len(URL_KEYS)):
        if key in URL_KEYS:
            if len(value) > MAX_URL_VALUE_CHARS:
                raise ValueError(f"{key}: at most {MAX_URL_VALUE_CHARS} characters")
            query[key] = value
    return query


def _typed(p: param.Parameter, key: str, text: str):
    """A query string as the parameter's type (the schema then checks its bounds)."""
    if isinstance(p, param.Integer):
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"{key}: {text[:40]!r} is not an integer")
        return int(text)
    if isinstance(p, param.Number):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{key}: {text[:40]!r} is not a number") from None
    return text


def query_config(query: dict, network: NetworkSpec, training: TrainingConfig) -> dict:
    """The run configuration a query asks for, validated whole (``ValueError`` otherwise)."""
    preset = query.get("preset", "")
    if preset and preset not in list_presets():
        raise ValueError(f"preset: unknown preset {preset[:40]!r}")
    config = copy.deepcopy(load_preset(preset).config if preset else run_config(network, training))
    if query.get("sizes"):
        layers = config["network"]["layers"]
        config["network"]["layers"] = [
            layer_with(layers[min(i, len(layers) - 1)], d)
            for i, d in enumerate(parse_sizes(query["sizes"]))
        ]
    for name, key in TRAINING_KEYS.items():
        if key in query:
            config["training"][name] = _typed(training.param[name], key, query[key])
    return validate_config(config)


def lesson_query(query: dict, lesson_steps: dict) -> tuple[str, int]:
    """The lesson and its 1-based step a query asks for (``ValueError`` naming the bound)."""
    lesson = query.get("lesson", "")
    if not lesson:
        if "step" in query:
            raise ValueError("step: given without a lesson")
        return "", 1
    if lesson not in lesson_steps:
        raise ValueError(f"lesson: unknown lesson {lesson[:40]!r}")
    text = query.get("step", "1")
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"step: {text[:40]!r} is not an integer")
    step, total = int(text), lesson_steps[lesson]
    if not 1 <= step <= total:
        raise ValueError(f"step: {step} is outside 1 … {total} (lesson {lesson!r})")
    return lesson, step


def _query_value(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class UrlState(param.Parameterized):
    """The URL-only part of the setup: which preset, and the layer sizes."""

    preset = param.String("", doc="Preset applied before the other URL fields")
    sizes = param.String("", doc="Layers, e.g. 800-10 or c15k5-p2-c40k5-p2-300-10")
    message = param.String("", doc="Why the URL was refused (Markdown-safe), or empty")
    lesson = param.String("", doc="The lesson followed ('' for none), docs/lessons.md §1")
    step = param.Integer(1, bounds=(1, None), doc="The lesson's step, from 1")

    def __init__(self, network: NetworkSpec, training: TrainingConfig, **params):
        super().__init__(**params)
        self.network, self.training = network, training
        self.sizes = sizes_text(network)
        self._applied = ""
        self._busy = False
        self.lesson_steps: dict[str, int] = {}  # lesson id -> its number of steps
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

    def apply_query(self, query: dict) -> None:
        """Apply a query dict (``{"sizes": "800-10", "lr": "0.003"}``) all or nothing."""
        query = {k: str(v) for k, v in query.items() if k in URL_KEYS}
        if not query:  # nothing to apply (a plain link): the setup stays, its cards too
            return
        lesson, step = lesson_query(query, self.lesson_steps)
        config = query_config(query, self.network, self.training)
        self._busy = True
        try:
            apply_run_config(config, self.network, self.training)
            if query.get("preset"):
                self._applied = query["preset"]
                self.preset = query["preset"]
        finally:
            self._busy = False
        self._from_network()
        if lesson:
            self.param.update(lesson=lesson, step=step)

    def load(self, search: str) -> bool:
        """Apply the URL's query (``"?sizes=20-2"``); False, and :attr:`message`, if refused."""
        try:
            self.apply_query(read_query(search))
        except ValueError as exc:
            self.message = "**URL refused** (the default setup is shown): " + escape(exc, 300)
            return False
        self.message = ""
        return True

    def sync(self, location) -> None:
        """Read ``location``'s query once, then keep the URL written from the state.

        The browser reports its URL when it connects (and a client could send any): that
        report is overwritten with the setup's own query, never read.
        """
        self.load(location.search or "")

        def write(*events):
            query = "?" + urlencode({k: _query_value(v) for k, v in url_dict(self).items()})
            if location.search != query:
                location.search = query

        self.param.watch(write, ["preset", "sizes", "lesson", "step"])
        self.training.param.watch(write, list(TRAINING_KEYS))
        location.param.watch(write, "search")
        write()


def url_dict(state: UrlState) -> dict:
    """The query the setup produces (what the URL shows)."""
    d = {"preset": state.preset, "sizes": state.sizes}
    d.update({key: getattr(state.training, p) for p, key in TRAINING_KEYS.items()})
    if state.lesson:
        d.update(lesson=state.lesson, step=state.step)
    return d


def apply_url_dict(d: dict, state: UrlState) -> None:
    """Apply a query dict in the URL's order: preset, sizes, then training fields."""
    state.apply_query(d)
