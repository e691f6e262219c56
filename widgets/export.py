"""Export and import: metrics CSV, run config JSON, model zip, NIR graph; SVG mode for the plots.

Uploads are size-limited in the browser and again on the server, then validated completely
before anything is built or changed; a bad file leaves the network and the config untouched
and the panel says why, with the file's content escaped.
"""

from __future__ import annotations

import io

import panel as pn
import param
from batscope.engine.nir import NIRExportError, export_refusal, require_nir
from batscope.training.controller import TrainingController
from batscope.training.files import (
    config_bytes,
    metrics_csv,
    model_bytes,
    nir_bytes,
    parse_config,
    read_model,
)
from batscope.training.limits import MAX_CONFIG_BYTES, MAX_MODEL_BYTES, escape
from batscope.training.state import ViewConfig, apply_run_config, run_config, task_shape

if "filedropper" not in pn.extension._loaded_extensions:
    pn.extension("filedropper")  # its scripts (FilePond, bundled), in a notebook or a script


class BoundedDropper(pn.widgets.FileDropper):
    """A FileDropper whose size limit holds on the server too, chunk by chunk.

    ``max_file_size`` stops an honest browser before it sends; a client that ignores it is
    cut off here once the chunks it sent exceed ``max_bytes`` (the buffer is dropped and
    ``refused`` names the file), so no upload can grow the server's memory past the limit.
    """

    max_bytes = param.Integer(MAX_CONFIG_BYTES, bounds=(1, None))
    refused = param.String("", doc="Name of the last file refused for its size")

    _rename = {**pn.widgets.FileDropper._rename, "max_bytes": None, "refused": None}

    def __init__(self, **params):
        params.setdefault("max_file_size", f"{params.get('max_bytes', MAX_CONFIG_BYTES) // 1000}KB")
        super().__init__(**params)

    def _process_event(self, event):
        if event.event_name == "upload_event":
            data = event.data
            if data.get("chunk") == 1:
                self._file_buffer.pop(data.get("name"), None)
            elif data.get("name") not in self._file_buffer:
                return  # the rest of a refused file
            held = sum(len(b) for bufs in self._file_buffer.values() for b in bufs)
            if held + len(data.get("data") or b"") > self.max_bytes:
                self._file_buffer.clear()
                self.refused = ""
                self.refused = str(data.get("name"))
                return
        super()._process_event(event)


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
        self.nir = pn.widgets.FileDownload(
            callback=self.nir_file,
            filename="batscope-model.nir",
            label="Model (NIR)",
            color="primary",
            variant="outline",
            css_classes=["download-nir"],
        )
        self.nir_note = pn.pane.Alert(
            "", alert_type="warning", visible=False, css_classes=["nir-message"]
        )
        c.network.param.watch(lambda *_: self.refresh_nir(), "revision")
        c.param.watch(lambda *_: self.refresh_nir(), ["status", "generation"])
        self.refresh_nir()
        self.config_upload = BoundedDropper(
            accepted_filetypes=[".json", "application/json"],
            max_bytes=MAX_CONFIG_BYTES,
            css_classes=["upload-config"],
        )
        self.model_upload = BoundedDropper(
            accepted_filetypes=[".zip", "application/zip"],
            max_bytes=MAX_MODEL_BYTES,
            css_classes=["upload-model"],
        )
        for dropper, load in (
            (self.config_upload, self.load_config),
            (self.model_upload, self.load_model),
        ):
            dropper.param.watch(lambda e, load=load: self._received(e.new, load), "value")
            dropper.param.watch(self._too_large, "refused")
        self.svg = pn.widgets.Checkbox.from_param(
            view_config.param.svg_export, label="Plots as SVG (for the save tool)"
        )
        self._layout = pn.Column(
            pn.pane.Markdown("#### Download"),
            pn.Row(self.csv, self.config, self.model, self.nir),
            pn.pane.Markdown(
                "*Model (NIR)*: the current network as a graph of the Neuromorphic Intermediate "
                "Representation (`Linear` / `Conv2d` + `CubaLIF`, `SumPool2d`), for simulators "
                "and neuromorphic hardware that read NIR (see README, NIR export and import)."
            ),
            self.nir_note,
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

    def refresh_nir(self) -> None:
        """Offer the NIR download, or disable it and say why NIR cannot hold this network."""
        try:
            require_nir()
            reason = export_refusal(self.controller.current_network())
        except (ImportError, ValueError) as exc:
            reason = str(exc)
        self.nir.disabled = bool(reason)
        self.nir_note.object = f"NIR export refused: {escape(reason, 400)}" if reason else ""
        self.nir_note.visible = bool(reason)

    def nir_file(self) -> io.BytesIO:
        """The current (trained) network as a ``.nir`` file (engine/nir.py's export)."""
        try:
            return io.BytesIO(nir_bytes(self.controller.current_network()))
        except (NIRExportError, ImportError) as exc:  # changed since the last refresh
            self.refresh_nir()
            self._say(f"NIR export refused: {escape(exc, 400)}", "danger")
            raise

    def _received(self, files: dict, load) -> None:
        """A FileDropper finished an upload: load the newest file, then forget the bytes."""
        if files:
            data = list(files.values())[-1]
            files.clear()
            load(data.encode() if isinstance(data, str) else data)

    def _too_large(self, event) -> None:
        if event.new:
            limit = event.obj.max_bytes
            self._say(f"Upload refused: {escape(event.new)} is larger than {limit} bytes", "danger")

    def load_config(self, data) -> bool:
        """Apply an uploaded run config; False (and a message) if it is refused."""
        if data is None:
            return False
        c = self.controller
        try:
            apply_run_config(parse_config(data), c.network, c.training)
        except (ValueError, TypeError) as exc:
            self._say(f"Config refused: {escape(exc, 400)}", "danger")
            return False
        self._say("Config loaded. Press Reset, then Play, to train with it.")
        return True

    def load_model(self, data) -> bool:
        """Load an uploaded model zip (architecture + weights); False if it is refused."""
        if data is None:
            return False
        c = self.controller
        try:
            model = read_model(data, task_shape(c.training.task)[0])
            with c.reserve_model(model.n_inputs, model.specs):  # BudgetRefused is a ValueError
                net = model.build()
        except (ValueError, TypeError) as exc:
            self._say(f"Model refused: {escape(exc, 400)}", "danger")
            return False
        c.network.set_layers(model.specs)
        c.load_weights(net.weights)
        self._say(f"Model loaded: {net.n_inputs}-" + "-".join(str(n) for n in net.sizes))
        return True

    def __panel__(self):
        return self._layout
