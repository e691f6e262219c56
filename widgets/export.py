"""Export and import: metrics CSV, run config JSON, model zip; SVG mode for the plots.

Uploads are validated completely before anything changes; a bad file leaves the network and
the config untouched and the panel says why.
"""

from __future__ import annotations

import io

import panel as pn
from batscope.training.controller import TrainingController
from batscope.training.files import (
    config_bytes,
    layer_specs,
    metrics_csv,
    model_bytes,
    parse_config,
    parse_model,
)
from batscope.training.state import ViewConfig, apply_run_config, run_config, task_shape


class ExportView(pn.viewable.Viewer):
    """Downloads (FileDownload) and uploads (FileInput) with a message line."""

    def __init__(self, controller: TrainingController, view_config: ViewConfig, **params):
        super().__init__(**params)
        self.controller = c = controller
        self.message = pn.pane.Alert(
            "", alert_type="info", visible=False, css_classes=["export-message"]
        )
        self.csv = pn.widgets.FileDownload(
            callback=lambda: io.StringIO(metrics_csv(c.history)),
            filename="batscope-metrics.csv",
            label="Metrics (CSV)",
            color="primary",
            variant="outline",
        )
        self.config = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO(config_bytes(run_config(c.network, c.training))),
            filename="batscope-config.json",
            label="Run config (JSON)",
            color="primary",
            variant="outline",
        )
        self.model = pn.widgets.FileDownload(
            callback=lambda: io.BytesIO(model_bytes(c.current_network())),
            filename="batscope-model.zip",
            label="Model (zip: .npz + .json)",
            color="primary",
            variant="outline",
        )
        self.config_upload = pn.widgets.FileInput(accept=".json")
        self.model_upload = pn.widgets.FileInput(accept=".zip")
        self.config_upload.param.watch(lambda e: self.load_config(e.new), "value")
        self.model_upload.param.watch(lambda e: self.load_model(e.new), "value")
        self.svg = pn.widgets.Checkbox.from_param(
            view_config.param.svg_export, label="Plots as SVG (for the save tool)"
        )
        self._layout = pn.Column(
            pn.pane.Markdown("#### Download"),
            pn.Row(self.csv, self.config, self.model),
            pn.pane.Markdown(
                "#### Upload\nA run config (JSON) replaces the sidebar settings; a "
                "model zip also sets the starting weights."
            ),
            pn.Row(
                pn.Column("Run config", self.config_upload), pn.Column("Model", self.model_upload)
            ),
            self.message,
            self.svg,
            sizing_mode="stretch_width",
        )

    def _say(self, text: str, kind: str = "success") -> None:
        self.message.alert_type = kind
        self.message.object = text
        self.message.visible = True

    def load_config(self, data) -> bool:
        """Apply an uploaded run config; False (and a message) if it is refused."""
        if data is None:
            return False
        c = self.controller
        try:
            apply_run_config(parse_config(data), c.network, c.training)
        except (ValueError, TypeError) as exc:
            self._say(f"Config refused: {exc}", "danger")
            return False
        self._say("Config loaded. Press Reset, then Play, to train with it.")
        return True

    def load_model(self, data) -> bool:
        """Load an uploaded model zip (architecture + weights); False if it is refused."""
        if data is None:
            return False
        c = self.controller
        try:
            net = parse_model(data)
            n_in = task_shape(c.training.task)[0]
            if net.n_inputs != n_in:
                raise ValueError(
                    f"the model has {net.n_inputs} inputs but task "
                    f"'{c.training.task}' gives {n_in}: choose a matching task first"
                )
            specs = layer_specs(net)
        except (ValueError, TypeError) as exc:
            self._say(f"Model refused: {exc}", "danger")
            return False
        c.network.layers = specs
        c.load_weights(net.weights)
        self._say(f"Model loaded: {net.n_inputs}-" + "-".join(str(s.size) for s in specs))
        return True

    def __panel__(self):
        return self._layout
