"""Show-the-code: the runnable training script for the current configuration, with a download.

The script (``app.codegen.render_script``) follows every change of the network and training
settings; it trains the same network on the same data with the public engine/datasets API.
"""

from __future__ import annotations

import io
import weakref
from functools import partial

import panel as pn
from batscope.training.codegen import render_script
from batscope.training.state import NetworkSpec, TrainingConfig, run_config
from batscope.widgets.base import PlotView

FILENAME = "train_batscope.py"


def _on_change(view_ref, *events):
    view = view_ref()
    if view is not None:
        view.changed()


class CodeView(PlotView):
    """The generated script (syntax-highlighted) and a *Download script* button.

    Pass the session's ``network`` (NetworkSpec) and ``training`` (TrainingConfig); the script
    re-renders when they change. ``config_provider() -> dict`` (a ``run_config`` dict) may be
    given instead.
    """

    def __init__(
        self,
        network: NetworkSpec | None = None,
        training: TrainingConfig | None = None,
        config_provider=None,
        view_config=None,
        **params,
    ):
        super().__init__(view_config=view_config, **params)
        self.network = network if network is not None else NetworkSpec()
        self.training = training if training is not None else TrainingConfig()
        self._provider = config_provider
        self.script = ""
        self._due = False  # a re-render is scheduled for the next tick
        self._watched: list = []
        self._callback = partial(_on_change, weakref.ref(self))
        self.training.param.watch(self._callback, list(TrainingConfig.FIELDS))
        self.network.param.watch(self._on_layers, "layers")
        self._watch_layers()
        self.code = pn.pane.Markdown("", sizing_mode="stretch_width", css_classes=["code-view"])
        self.download = pn.widgets.FileDownload(
            callback=self._file,
            filename=FILENAME,
            label="Download script",
            color="primary",
            embed=False,
        )
        self._layout = pn.Column(
            pn.pane.Markdown("### The code: this configuration as a runnable script"),
            pn.pane.Markdown(f"Run it with `python {FILENAME}` where batscope is installed."),
            self.download,
            self.code,
            sizing_mode="stretch_width",
        )
        self.refresh()

    def __panel__(self):
        return self._layout

    def _watch_layers(self) -> None:
        for layer, watcher in self._watched:
            layer.param.unwatch(watcher)
        self._watched = [
            (layer, layer.param.watch(self._callback, list(layer.FIELDS)))
            for layer in self.network.layers
        ]

    def _on_layers(self, event) -> None:
        self._watch_layers()
        self.changed()

    def changed(self) -> None:
        """The configuration changed: re-render once for a burst of changes (a preset sets
        fields and layers one after the other), on the next tick when served, else at once."""
        doc = pn.state.curdoc
        if doc is None or doc.session_context is None:
            self.refresh()
        elif not self._due:
            self._due = True
            doc.add_next_tick_callback(self._refresh_due)

    def _refresh_due(self) -> None:
        self._due = False
        self.refresh()

    def config(self) -> dict:
        if self._provider is not None:
            return self._provider()
        return run_config(self.network, self.training)

    def refresh(self) -> None:
        """Re-render the script for the current configuration."""
        try:
            script = render_script(self.config())
        except (ValueError, TypeError) as exc:
            self.script = ""
            self.code.object = f"**This configuration cannot be turned into a script:** {exc}"
            self.download.disabled = True
            return
        self.download.disabled = False
        if script != self.script or not self.code.object.startswith("```"):
            self.script = script  # highlighting it is the costly part (10-30 ms)
            self.code.object = f"```python\n{script}\n```"

    def _file(self):
        return io.BytesIO(self.script.encode("utf-8"))

    def update(self, batch: list) -> None:
        """Nothing streams here: the script follows the configuration."""

    def reset(self) -> None:
        self.refresh()
