"""LinePool: lines made when first needed, legends and hover tools kept in step."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bokeh")

from batscope.widgets.live import LinePool, add_hover  # noqa: E402
from bokeh.models import Legend  # noqa: E402
from bokeh.plotting import figure  # noqa: E402


def _curve(n: int) -> dict:
    return {"t": np.arange(n, dtype=float), "u": np.ones(n), "k": np.zeros(n)}


def test_lines_are_made_when_first_needed_and_the_legend_and_hover_follow():
    fig = figure()
    pool = LinePool(fig, 3, "t", "u", ("k",), made=0, marker="circle")
    legend = Legend(items=pool.items)
    fig.add_layout(legend)
    hover = add_hover(fig, pool.renderers, [("t", "@t")])
    pool.legends.append(legend)
    pool.hovers.append(hover)
    assert pool.sources == [] and fig.renderers == []  # an empty plot carries no line

    pool.set([("a", _curve(2)), ("b", _curve(3))])
    assert len(pool.sources) == 2 and len(fig.renderers) == 4  # a line and markers each
    assert list(legend.items) == pool.items and list(hover.renderers) == pool.renderers
    assert [i.label.value for i in legend.items if i.visible] == ["a", "b"]

    pool.set([("a", _curve(1))])  # fewer curves: the rest are emptied and unlisted, not removed
    assert len(pool.sources) == 2 and [i.visible for i in pool.items] == [True, False]
    assert len(pool.sources[1].data["t"]) == 0

    pool.set([(str(k), _curve(1)) for k in range(5)])  # never more than its size
    assert len(pool.sources) == 3 and len(legend.items) == 3 and len(hover.renderers) == 6
    colors = [line.glyph.line_color for line in pool.lines]
    assert len(set(colors)) == 3


def test_all_lines_are_made_at_once_by_default():
    pool = LinePool(figure(), 4, "t", "u", ("k",))
    assert len(pool.sources) == 4 and not any(i.visible for i in pool.items)
