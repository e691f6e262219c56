"""Shared pieces of the views: the PlotView base (its figures follow SVG export) and validated
inputs.

Views are ``pn.viewable.Viewer`` s that build their panes and streams once in ``__init__`` and
then only ``update(batch)`` / ``reset()`` them (app-architecture.md §2).
"""

from __future__ import annotations

from functools import partial

import panel as pn
import param
from batscope.training.limits import escape
from batscope.training.state import ViewConfig

from .live import new_figure


def _follow_svg(fig, event) -> None:
    fig.output_backend = "svg" if event.new else "canvas"


class PlotView(pn.viewable.Viewer):
    """Base of the views: holds the ViewConfig; subclasses fill ``update`` and ``reset``.

    Every view draws Bokeh figures made by :meth:`figure` (see ``widgets/live.py``).
    """

    view_config = param.ClassSelector(class_=ViewConfig)

    def __init__(self, view_config: ViewConfig | None = None, **params):
        super().__init__(view_config=view_config or ViewConfig(), **params)

    def figure(self, *args, **kw):
        """A live Bokeh figure (:func:`batscope.widgets.live.new_figure`) that follows
        ``view_config.svg_export`` (the save tool then writes SVG)."""
        fig = new_figure(*args, **kw)
        fig.output_backend = "svg" if self.view_config.svg_export else "canvas"
        self.view_config.param.watch(partial(_follow_svg, fig), ["svg_export"])
        return fig

    def update(self, batch: list) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError


def _widget_for(p: param.Parameter, label: str, value):
    """A Panel input matching a param type (Integer, Number, Selector, Boolean)."""
    kw = {
        "label": label,
        "value": value,
        "description": p.doc or None,
        "css_classes": [f"input-{p.name}"],
    }
    if isinstance(p, param.Boolean):
        return pn.widgets.Checkbox(**kw)
    if isinstance(p, param.Selector):
        return pn.widgets.Select(options=list(p.objects), **kw)
    low, high = p.bounds or (None, None)
    if isinstance(p, param.Integer):
        return pn.widgets.IntInput(start=low, end=high, **kw)
    step = p.softbounds[0] if p.softbounds and p.softbounds[0] else 0.01
    return pn.widgets.FloatInput(start=low, end=high, step=step, **kw)


def validated_input(
    obj: param.Parameterized,
    name: str,
    alert: pn.pane.Alert,
    label=None,
    watchers: list | None = None,
):
    """An input bound to ``obj.<name>`` that refuses invalid values at the widget.

    A value the parameter rejects (bounds, type) is not applied: the widget snaps back to the
    current value and ``alert`` shows the reason. Changes made to the parameter elsewhere (a
    preset, an uploaded config) flow back into the widget.
    """
    p = obj.param[name]
    widget = _widget_for(p, label or p.label, getattr(obj, name))
    guard = {"busy": False}

    def to_param(event):
        if guard["busy"]:
            return
        try:
            setattr(obj, name, event.new)
        except (ValueError, TypeError) as exc:
            guard["busy"] = True
            widget.value = event.old
            guard["busy"] = False
            alert.object = f"**{label or p.label}**: {escape(exc, 300)}"
            alert.visible = True
        else:
            alert.visible = False

    def to_widget(event):
        if widget.value != event.new:
            guard["busy"] = True
            widget.value = event.new
            guard["busy"] = False

    widget.param.watch(to_param, "value")
    watcher = obj.param.watch(to_widget, name)
    if watchers is not None:
        watchers.append((obj, watcher))
    return widget


def show_visible(grid, widgets) -> None:
    """Put only the visible ``widgets`` in ``grid``, in their order: a hidden input has no
    Bokeh models until it is shown (every model costs the server at each session's opening)."""
    shown = [w for w in widgets if w.visible]
    if shown != grid.objects:
        grid.objects = shown


def error_alert() -> pn.pane.Alert:
    """A hidden danger alert that :func:`validated_input` fills when it refuses a value."""
    return pn.pane.Alert("", alert_type="danger", visible=False, margin=(2, 5))


def sweep_buttons(ctrl, start: str, stop: str):
    """A sweep controller's start and stop buttons (each enabled only when it can act) and its
    progress bar: ``(start, stop, progress)``."""
    busy = pn.bind(lambda s: s in ("running", "queued"), ctrl.param.status)
    run = pn.widgets.Button.from_param(ctrl.param.run, label=start, color="primary", disabled=busy)
    halt = pn.widgets.Button.from_param(
        ctrl.param.stop,
        label=stop,
        color="danger",
        disabled=pn.bind(lambda s: s not in ("running", "queued"), ctrl.param.status),
    )
    progress = pn.indicators.Progress(
        value=0, max=1, sizing_mode="stretch_width", bar_color="primary"
    )
    return run, halt, progress
