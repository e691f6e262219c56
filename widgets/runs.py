"""Open a run folder of the server's (``batscope serve --runs DIR``) to explore its model.

The list is built on the server (training/runlibrary.py); the browser only picks one of its
names, and the name is looked up in the list again when the run is opened. A refused run (bad or
partial folder, over the memory budget) says why here and changes nothing.
"""

from __future__ import annotations

import panel as pn
from batscope.training.controller import TrainingController
from batscope.training.limits import escape
from batscope.training.runlibrary import RunOpenError, explore_config, list_runs, open_run

from .base import error_alert

NONE_TEXT = "No finished run folder here yet (one holds config.json, metrics.csv and model.*)."


class RunPicker(pn.viewable.Viewer):
    """A list of the server's run folders and an Open button."""

    def __init__(self, controller: TrainingController, root, **params):
        super().__init__(**params)
        self.controller, self.root = controller, root
        self.select = pn.widgets.Select(
            label="run", options=[], sizing_mode="stretch_width", css_classes=["run-select"]
        )
        self.refresh = pn.widgets.Button(label="↻ Refresh", width=90)
        self.open = pn.widgets.Button(
            label="Open", color="primary", width=90, css_classes=["run-open"]
        )
        self.alert = error_alert()
        self.note = pn.pane.Markdown("", css_classes=["run-note"], sizing_mode="stretch_width")
        self.refresh.on_click(lambda _: self.list())
        self.open.on_click(lambda _: self.open_selected())
        self.list()
        self._layout = pn.Column(
            self.select,
            pn.Row(self.open, self.refresh),
            self.note,
            self.alert,
            sizing_mode="stretch_width",
        )

    def list(self) -> None:
        """Rebuild the list from the runs folder."""
        names = list_runs(self.root)
        self.select.options = names
        if self.select.value not in names:
            self.select.value = names[0] if names else None
        self.open.disabled = not names
        self.note.object = "" if names else NONE_TEXT

    def open_selected(self) -> bool:
        """Open the selected run; False (and a message) if it is refused."""
        name = self.select.value
        try:
            opened = open_run(self.root, name, reserve=self.controller.reserve_model)
            config, note = explore_config(opened.config)
        except (RunOpenError, ValueError) as exc:  # BudgetRefused is a ValueError
            self.alert.object = f"**run {escape(name)}**: {escape(exc, 400)}"
            self.alert.visible = True
            return False
        self.alert.visible = False
        if not self.controller.open_record(opened, config):
            self.alert.object = escape(self.controller.message, 400)
            self.alert.visible = True
            return False
        self.note.object = escape(note, 400)
        return True

    def __panel__(self):
        return self._layout
