"""widgets/live.py: payload comparison and feeding sources only with changed data."""

import numpy as np
from batscope.widgets.live import feed, unchanged
from bokeh.models import ColumnDataSource


def test_unchanged_compares_nested_payloads():
    a = {"z": np.array([1.0, np.nan]), "bounds": (0.0, 1.0), "m": {"k": [np.arange(3)]}}
    b = {"z": np.array([1.0, np.nan]), "bounds": (0.0, 1.0), "m": {"k": [np.arange(3)]}}
    assert unchanged(a, b)
    assert not unchanged(a, {**b, "bounds": (0.0, 2.0)})
    assert not unchanged(a, {**b, "z": np.array([1.0, 2.0])})
    assert not unchanged(a, {**b, "z": np.array([1.0, np.nan], np.float32)})
    assert not unchanged({"x": 1}, {"y": 1})
    assert unchanged(float("nan"), float("nan")) and not unchanged(1.0, float("nan"))
    assert not unchanged([np.zeros(2)], np.zeros(2))


def test_feed_sends_only_changed_columns():
    src = ColumnDataSource({"t": np.zeros(0)})
    assert not feed(src, {"t": np.zeros(0)})  # empty stays empty
    assert feed(src, {"t": np.array([0.1, np.nan])})
    data = src.data
    assert not feed(src, {"t": np.array([0.1, np.nan])})  # NaN equals NaN: nothing sent
    assert src.data is data
    assert feed(src, {"t": np.array([0.1, np.nan]), "u": np.zeros(2)})  # a new column
    assert feed(src, {"image": [np.ones((2, 3), np.float32)]})
    assert not feed(src, {"image": [np.ones((2, 3), np.float32)]})
    assert feed(src, {"image": [np.ones((3, 2), np.float32)]})


def test_diverging_colours_run_from_blue_to_red():
    from batscope.widgets.live import symmetric_mapper

    low, high = symmetric_mapper().palette[0], symmetric_mapper().palette[-1]
    assert int(low[5:7], 16) > int(low[1:3], 16)  # negative: more blue than red
    assert int(high[1:3], 16) > int(high[5:7], 16)  # positive: more red than blue


def test_an_empty_figure_has_an_invisible_anchor_at_the_origin():
    from batscope.widgets.live import ANCHOR, glyphs, new_figure
    from bokeh.models import FactorRange

    fig = new_figure("t")
    (anchor,) = [r for r in fig.renderers if r.name == ANCHOR]
    assert anchor.glyph.size == 0 and anchor.glyph.fill_alpha == 0 and glyphs(fig) == []
    assert list(anchor.data_source.data["x"]) == [0.0]
    categorical = new_figure("bars", x_range=FactorRange())
    assert categorical.renderers == []  # no numeric origin on a categorical axis


def test_line_pool_shows_a_varying_number_of_curves():
    from batscope.widgets.live import LinePool, new_figure
    from bokeh.document import Document

    fig = new_figure()
    pool = LinePool(fig, 3, "x", "y", marker="circle")
    assert len(pool.renderers) == 6 and not any(item.visible for item in pool.items)
    curve = {"x": np.arange(4.0), "y": np.ones(4)}
    pool.set([("a", curve), ("b", curve), ("c", curve), ("d", curve)])  # more than the pool
    assert [item.label.value for item in pool.items] == ["a", "b", "c"]
    doc = Document()
    doc.add_root(fig)
    events = []
    doc.on_change(events.append)
    pool.set([("a", curve), ("b", curve), ("c", curve)])
    assert events == []  # nothing changed: nothing sent
    pool.set([("b", curve)])  # fewer curves: the others are emptied and leave the legend
    assert [item.visible for item in pool.items] == [True, False, False]
    assert pool.items[0].label.value == "b"
    assert all(len(src.data["x"]) == 0 for src in pool.sources[1:])


def test_live_text_escapes_and_sends_only_changes():
    import html

    from batscope.widgets.live import LiveText, markdown_html
    from bokeh.document import Document

    assert markdown_html("**a<b** & c\n\nnext") == "<p><b>a&lt;b</b> &amp; c</p><p>next</p>"
    text = LiveText("**step** 1", css_classes=["run-status"])
    assert text.object == "**step** 1" and text.model.css_classes == ["run-status"]
    assert html.unescape(text.model.text) == "<p><b>step</b> 1</p>"  # the model decodes it
    doc = Document()
    doc.add_root(text.__panel__().get_root(doc))
    events = []
    doc.on_change(events.append)
    text.object = "**step** 1"
    assert events == []
    text.object = "**step** 2"
    assert len(events) == 1 and "2" in text.model.text
