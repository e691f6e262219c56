"""NetworkBuilder: one card per layer with add / remove / move up / move down.

Each card chooses its layer's kind: dense (N), conv (channels, kernel size) or pool (size), and
shows the layer's output shape ("24×24×15 = 8640 neurons"). Inputs are bound to the LayerSpec
params through ``validated_input``: a value the spec refuses (N = 0, τs ≤ 0, θ ≤ 0, S = 0, a
kernel larger than its input, a conv after a dense layer, ...) is not applied and the card says
why. Under the cards, the
peak memory a run of these settings would take (``training.resources.training_estimate``, the same
estimate Play is checked against) follows every change.
"""

from __future__ import annotations

import math

import panel as pn
from batscope.engine.memory import format_bytes
from batscope.training.resources import RUN_HINT, SessionAccount, training_estimate
from batscope.training.state import (
    IMAGE_TASKS,
    LayerSpec,
    NetworkSpec,
    TrainingConfig,
    input_shape_of,
    run_config,
    task_shape,
)

from .base import error_alert, show_visible, validated_input

LABELS = {
    "kind": "layer type",
    "size": "N (neurons)",
    "channels": "channels",
    "kernel_size": "kernel k (k×k)",
    "pool_size": "pool size",
    "tau_s": "τs [s]",
    "theta": "θ (threshold)",
    "reset": "Δθ (reset, empty = θ)",
    "n_max": "S (spike buffer)",
    "init": "init",
    "init_low": "low",
    "init_high": "high",
    "init_mean": "mean μ",
    "init_std": "std σ",
}


# training settings the memory estimate depends on
MEMORY_FIELDS = ("task", "batch_size", "n_train", "dtype", "optimizer")
# the inputs each kind of layer shows (the others are hidden on its card)
KIND_INPUTS = {
    "dense": {"kind", "size", *LayerSpec.NEURON_FIELDS},
    "conv": {"kind", "channels", "kernel_size", *LayerSpec.NEURON_FIELDS},
    "pool": {"kind", "pool_size"},
}


def shape_text(shape: tuple) -> str:
    """``"24×24×15 = 8640 neurons"`` (an image shape) or ``"300 neurons"``."""
    n = math.prod(shape)
    if len(shape) == 1:
        return f"{n} neurons"
    return f"{'×'.join(str(s) for s in shape)} = {n} neurons"


def shape_lines(network: NetworkSpec) -> list[str]:
    """Each layer's output shape as Markdown (the shapes are always valid: the spec refuses
    an impossible geometry)."""
    return [f"**Output**: {shape_text(s)}" for s in network.shapes[1:]]


def memory_text(network: NetworkSpec, training: TrainingConfig, budget: int) -> str:
    """The estimate of a run's peak memory against the session's ``budget``, as Markdown."""
    try:
        estimate = training_estimate(run_config(network, training))
    except (ValueError, TypeError, KeyError):  # an unfinished setup: check_config says why
        return "**Memory**: no estimate for these settings yet."
    if estimate.total > budget:
        return (
            f"**Memory**: a run needs {estimate.describe()}, more than this session's "
            f"{format_bytes(budget)} budget: Play will be refused; {RUN_HINT}."
        )
    return (
        f"**Memory**: a run needs {estimate.describe()} of this session's {format_bytes(budget)}."
    )


class NetworkBuilder(pn.viewable.Viewer):
    """Cards for ``network.layers``; rebuilt only when layers are added, removed or moved."""

    def __init__(
        self,
        network: NetworkSpec,
        training: TrainingConfig,
        account: SessionAccount | None = None,
        hidden=(),
        locked: bool = False,
        **params,
    ):
        super().__init__(**params)
        self.network, self.training = network, training
        self.account = account if account is not None else SessionAccount()
        self._memory = pn.pane.Markdown(
            sizing_mode="stretch_width", margin=(0, 5), css_classes=["memory-estimate"]
        )
        self.hidden: set[str] = set(hidden)  # see set_hidden; the cards are built with them
        self.locked = locked
        self._watchers: list = []
        self._input = pn.pane.Markdown(sizing_mode="stretch_width", margin=(0, 5))
        self._cards = pn.Column(sizing_mode="stretch_width")
        self._add = pn.widgets.Button(
            label="+ add layer",
            color="primary",
            variant="outline",
            sizing_mode="stretch_width",
            disabled=locked,
        )
        self._add.on_click(lambda _: self.network.add_layer(max(len(self.network.layers) - 1, 0)))
        network.param.watch(lambda *_: self._rebuild(), "layers")
        training.param.watch(lambda *_: self._describe_input(), "task")
        network.param.watch(lambda *_: self._estimate(), "revision")
        network.param.watch(lambda *_: self._show_shapes(), "revision")
        training.param.watch(lambda *_: self._estimate(), list(MEMORY_FIELDS))
        self._describe_input()
        self._rebuild()
        self._estimate()
        self._layout = pn.Column(
            self._input, self._cards, self._add, self._memory, sizing_mode="stretch_width"
        )

    def _estimate(self):
        self._memory.object = memory_text(
            self.network, self.training, self.account.broker.per_session
        )

    def _describe_input(self):
        task = self.training.task
        self.network.flat_input = task not in IMAGE_TASKS  # the cards refuse conv / pool
        n_in, n_cls = task_shape(task)
        image = (
            f" ({shape_text(input_shape_of(task)).split(' =')[0]} for conv and pool layers)"
            if task in IMAGE_TASKS
            else " (flat: no conv or pool layers)"
        )
        self._input.object = (
            f"**Input**: {n_in} spike trains from task *{task}*{image}; "
            f"{n_cls} classes: the last layer is dense with {n_cls} neurons"
        )

    def _show_shapes(self):
        for pane, text in zip(self._shapes, shape_lines(self.network), strict=False):
            pane.object = text

    def _rebuild(self):
        for obj, watcher in self._watchers:
            obj.param.unwatch(watcher)
        self._watchers.clear()
        layers = self.network.layers
        self._shapes = []
        self._cards.objects = [self._card(i, spec, len(layers)) for i, spec in enumerate(layers)]
        self._show_shapes()

    def set_hidden(self, fields, locked: bool) -> None:
        """Hide LayerSpec ``fields``; ``locked`` freezes the structure (no add/remove/move)."""
        if set(fields) == self.hidden and locked == self.locked:
            return  # the cards already show this: rebuilding them costs a session's opening
        self.hidden, self.locked = set(fields), locked
        self._add.disabled = locked
        self._rebuild()

    def _card(self, i: int, spec: LayerSpec, n_layers: int) -> pn.Card:
        alert = error_alert()
        inputs = {
            name: validated_input(spec, name, alert, LABELS[name], self._watchers)
            for name in LABELS
        }
        for w in inputs.values():
            w.width = 120
        for name in ("kind", "size", "channels", "kernel_size", "pool_size"):
            inputs[name].disabled = self.locked

        grid = pn.GridBox(ncols=2, sizing_mode="stretch_width")

        def show_inputs(*_):
            shown = KIND_INPUTS[spec.kind] - self.hidden
            shown -= {"init_mean", "init_std"} if spec.init == "uniform" else set()
            shown -= {"init_low", "init_high"} if spec.init == "normal" else set()
            for name, w in inputs.items():
                w.visible = name in shown
            show_visible(grid, inputs.values())

        show_inputs()
        self._watchers.append((spec, spec.param.watch(show_inputs, ["init", "kind"])))
        shape = pn.pane.Markdown(margin=(0, 5), css_classes=["layer-shape"])
        self._shapes.append(shape)
        up = pn.widgets.Button(
            label="↑", width=36, disabled=self.locked or i == 0, description="Move this layer up"
        )
        down = pn.widgets.Button(
            label="↓",
            width=36,
            disabled=self.locked or i == n_layers - 1,
            description="Move this layer down",
        )
        remove = pn.widgets.Button(
            label="✕",
            width=36,
            color="danger",
            variant="outline",
            disabled=self.locked or n_layers == 1,
            description="Remove this layer",
        )
        up.on_click(lambda _: self.network.move_layer(i, -1))
        down.on_click(lambda _: self.network.move_layer(i, +1))
        remove.on_click(lambda _: self.network.remove_layer(i))
        role = "output" if i == n_layers - 1 else "hidden"
        return pn.Card(
            pn.Row(up, down, remove),
            grid,
            shape,
            alert,
            title=f"Layer {i + 1} ({role})",
            collapsed=i < n_layers - 2,
            sizing_mode="stretch_width",
            css_classes=["layer-card"],
            margin=(3, 0),
        )

    def __panel__(self):
        return self._layout
