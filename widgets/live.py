"""Live Bokeh figures: built once per view, then fed by replacing ColumnDataSource columns.

The views that change while a run trains (raster, membrane, error flow, metrics, weights,
sparsity, latency) draw with plain Bokeh models instead of HoloViews DynamicMaps. A DynamicMap
refresh rebuilds the element, looks up its options and recomputes ranges: 10–50 ms of GIL time per
plot and tick on a 2-core laptop, which the training thread waits for between its Numba kernels
(measured by ``python -m batscope.app.bench_ui``). Assigning ``source.data`` costs well under a
millisecond; the ranges follow the data in the browser (``DataRange1d``) and the arrays travel as
binary buffers. The views computed on demand (convergence sweep, editor, precision, gradient
check, sweeps) are drawn the same way: HoloViews built each of them at 0.2–0.5 s of the server's
event loop at every session's first showing.
"""

from __future__ import annotations

import html
import re

import numpy as np
import panel as pn
import param
from bokeh.core.properties import value
from bokeh.models import (
    BoxZoomTool,
    ColorBar,
    ColumnDataSource,
    FactorRange,
    HoverTool,
    LegendItem,
    LinearColorMapper,
    PanTool,
    ResetTool,
    SaveTool,
    WheelZoomTool,
)
from bokeh.palettes import Category10_10, RdBu11
from bokeh.plotting import figure
from panel.models.markup import HTML as PanelHTML

ANCHOR = "anchor"  # name of the invisible glyph that gives an empty figure its ranges
# blue for negative, red for positive (Bokeh's RdBu11 runs from dark blue to dark red)
DIVERGING = tuple(RdBu11)


def unchanged(old, new) -> bool:
    """Whether two payloads (nested dicts, sequences, arrays, numbers) are equal (NaN == NaN)."""
    if isinstance(new, dict):
        return (
            isinstance(old, dict)
            and old.keys() == new.keys()
            and all(unchanged(old[k], new[k]) for k in new)
        )
    if isinstance(new, np.ndarray) or isinstance(old, np.ndarray):
        return (
            isinstance(old, np.ndarray)
            and isinstance(new, np.ndarray)
            and old.shape == new.shape
            and old.dtype == new.dtype
            and np.array_equal(old, new, equal_nan=old.dtype.kind in "fc")
        )
    if isinstance(new, list | tuple):
        return (
            isinstance(old, list | tuple) and len(old) == len(new) and all(map(unchanged, old, new))
        )
    try:
        return bool(old == new) or bool(old != old and new != new)
    except (TypeError, ValueError):
        return False


def feed(source: ColumnDataSource, data: dict) -> bool:
    """Replace ``source.data`` with ``data`` unless the source already holds equal data.

    Columns are NumPy arrays (an image column is a list of 2-D arrays). Returns whether anything
    was sent: skipping equal frames saves the serialization and the browser's redraw (the
    displayed sample often keeps its spikes between ticks).
    """
    if unchanged(dict(source.data), data):
        return False
    source.data = data
    return True


def whole_number_ticks(axis) -> None:
    """Ticks on ``axis`` (a figure's ``xaxis`` or ``yaxis``) at whole numbers only: a neuron
    index of 0.2 means nothing, and a layer of two neurons had six ticks."""
    axis.ticker.min_interval = 1


def new_figure(
    title: str = "",
    x_label: str = "",
    y_label: str = "",
    height: int = 300,
    anchor: bool = True,
    **kw,
):
    """A figure with the app's common tools (pan, wheel and box zoom, reset, save); ``anchor``:
    an invisible point at the origin gives it ranges while empty (not for log axes: give them
    explicit ranges)."""
    tools = [PanTool(), WheelZoomTool(), BoxZoomTool(), ResetTool(), SaveTool()]
    fig = figure(
        title=title,
        x_axis_label=x_label,
        y_axis_label=y_label,
        height=height,
        min_height=height,
        sizing_mode="stretch_width",
        tools=tools,
        toolbar_location="right",
        **kw,
    )
    fig.toolbar.active_scroll = None  # a page scrolls past plots instead of zooming them
    fig.grid.grid_line_alpha = 0.4
    if anchor and not any(isinstance(r, FactorRange) for r in (fig.x_range, fig.y_range)):
        # an invisible point at the origin: an empty plot still has axes (and BokehJS no
        # "could not set initial ranges" warning on every paint); all views' data start at 0
        fig.scatter([0.0], [0.0], size=0, alpha=0, name=ANCHOR)
    return fig


def glyphs(fig) -> list:
    """The figure's glyph renderers that draw data (not the invisible anchor)."""
    return [r for r in fig.renderers if r.name != ANCHOR]


def add_hover(fig, renderers, tooltips) -> HoverTool:
    """A hover tool limited to ``renderers`` (so overlaid lines do not all answer at once)."""
    tool = HoverTool(renderers=list(renderers), tooltips=list(tooltips))
    fig.add_tools(tool)
    return tool


def symmetric_mapper(palette=DIVERGING) -> LinearColorMapper:
    """A colour mapper for signed values, centred on zero; set its range with :func:`set_limit`.

    NaN shows grey, so a non-finite value stands out instead of taking an end colour.
    """
    return LinearColorMapper(palette=list(palette), low=-1.0, high=1.0, nan_color="#bbbbbb")


def set_limit(mapper: LinearColorMapper, limit: float) -> None:
    """Colour range (−limit, limit); no change sent when it is already that."""
    limit = float(limit) if np.isfinite(limit) and limit > 0 else 1.0
    if (mapper.low, mapper.high) != (-limit, limit):
        mapper.update(low=-limit, high=limit)


def add_colorbar(fig, mapper, title: str = "") -> ColorBar:
    """A colour bar on the right of ``fig`` for ``mapper``."""
    bar = ColorBar(color_mapper=mapper, title=title, width=10)
    fig.add_layout(bar, "right")
    return bar


def add_image(fig, source, mapper):
    """An image glyph on ``fig`` drawing the ``image_data`` columns of ``source`` through
    ``mapper``; returns its renderer."""
    return fig.image(
        image="image", x="x", y="y", dw="dw", dh="dh", source=source, color_mapper=mapper
    )


def image_data(z: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> dict:
    """Columns of an ``fig.image`` glyph: ``z`` with row 0 at the bottom, spanning the bounds."""
    z = np.asarray(z, dtype=np.float32)
    return {
        "image": [z],
        "x": np.array([x0]),
        "y": np.array([y0]),
        "dw": np.array([max(x1 - x0, 1e-12)]),
        "dh": np.array([max(y1 - y0, 1e-12)]),
    }


def empty_image() -> dict:
    """An image source holding no image (same columns as :func:`image_data`)."""
    return {
        "image": [],
        "x": np.zeros(0),
        "y": np.zeros(0),
        "dw": np.zeros(0),
        "dh": np.zeros(0),
    }


def bokeh_pane(fig, **kw) -> pn.pane.Bokeh:
    """``fig`` in a Panel pane that stretches to the page width."""
    return pn.pane.Bokeh(fig, sizing_mode="stretch_width", **kw)


def show(pane: pn.pane.Bokeh, on: bool) -> None:
    """Show or hide a Bokeh pane. The figure's ``visible`` is what the page follows; the pane's
    is kept in step without its watchers: on a rendered pane they copy every figure property
    back onto the pane, and a served figure's stylesheets (Bokeh models) fail its validation."""
    if pane.visible != on or pane.object.visible != on:
        pane.object.visible = on
        with param.parameterized.discard_events(pane):
            pane.visible = on


class LinePool:
    """A set of labelled lines (and optional markers) for a varying number of curves, at most
    ``size``.

    Each line has its own source and legend entry; :meth:`set` fills the first ones and empties
    and unlists the rest. A legend grouped by a data column (``legend_field``) is not used:
    BokehJS draws its swatches from row indices and fails when the rows shrink. ``made`` lines
    are built at once (default: all); the others when first needed, and the legends and hover
    tools in :attr:`legends` and :attr:`hovers` then list them too (each line is some ten Bokeh
    models that a session's page would otherwise carry empty).
    """

    def __init__(
        self,
        fig,
        size: int,
        x: str,
        y: str,
        extra=(),
        colors=Category10_10,
        made: int | None = None,
        **style,
    ):
        self.fig, self.size, self.x, self.y, self.colors = fig, size, x, y, colors
        self._marker = style.pop("marker", None)
        self._style = {"line_width": 2, **style}
        self._empty = {c: np.zeros(0) for c in (x, y, *extra)}
        self.sources: list = []
        self.lines: list = []
        self.items: list = []
        self._labels: list = []
        self.legends: list = []  # Legends showing self.items, kept up to date as lines are made
        self.hovers: list = []  # HoverTools answering for self.renderers, likewise
        self._make(size if made is None else made)

    def _make(self, n: int) -> None:
        """Build lines until there are ``n``."""
        for k in range(len(self.sources), min(n, self.size)):
            src = ColumnDataSource(dict(self._empty))
            color = self.colors[k % len(self.colors)]
            glyphs = [self.fig.line(self.x, self.y, source=src, color=color, **self._style)]
            if self._marker:
                glyphs.append(
                    self.fig.scatter(
                        self.x, self.y, source=src, color=color, marker=self._marker, size=6
                    )
                )
            self.sources.append(src)
            self.lines.append(glyphs[0])
            self.items.append(LegendItem(label=value(""), renderers=glyphs, visible=False))
            self._labels.append(None)
        for legend in self.legends:
            legend.items = list(self.items)
        for hover in self.hovers:
            hover.renderers = self.renderers

    @property
    def renderers(self) -> list:
        """Every glyph renderer of the pool (for hover tools)."""
        return [r for item in self.items for r in item.renderers]

    def set(self, curves) -> None:
        """Show ``[(label, columns), ...]`` (at most the pool's size); only changes are sent."""
        curves = list(curves)[: self.size]
        if len(curves) > len(self.sources):
            self._make(len(curves))
        for k, src in enumerate(self.sources):
            label, data = curves[k] if k < len(curves) else (None, self._empty)
            feed(src, data)
            if self._labels[k] != label:
                self._labels[k] = label
                if label is None:
                    self.items[k].visible = False
                else:
                    self.items[k].update(label=value(label), visible=True)


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def markdown_html(text: str) -> str:
    """The little Markdown the live texts use: ``**bold**`` and blank-line paragraphs."""
    paragraphs = _BOLD.sub(r"<b>\1</b>", html.escape(text)).split("\n\n")
    return "".join(f"<p>{p}</p>" for p in paragraphs if p.strip())


class LiveText:
    """A text updated every tick; ``object`` as on a Markdown pane.

    A ``pn.pane.Markdown`` re-renders and re-styles itself on the server on each change (1–5 ms
    of GIL time); a Bokeh ``Div`` is cheap there, but each change makes the browser lay out the
    whole page again. Panel's own HTML model, set directly, costs microseconds on the server and
    only replaces its inner HTML in the browser.
    """

    def __init__(self, text: str = "", css_classes=(), margin=(0, 10)):
        self.model = PanelHTML(
            css_classes=list(css_classes), margin=margin, sizing_mode="stretch_width"
        )
        self._pane = pn.pane.Bokeh(self.model, sizing_mode="stretch_width")
        self._object = None
        self.object = text

    @property
    def object(self) -> str:
        return self._object

    @object.setter
    def object(self, text: str) -> None:
        if text != self._object:
            self._object = text
            self.model.text = html.escape(markdown_html(text))  # the model decodes it

    def __panel__(self):
        return self._pane
