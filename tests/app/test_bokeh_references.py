"""The faster walk of a document's models finds exactly the models Bokeh's own walk finds."""

import pytest

pytest.importorskip("panel")

from batscope.app import bokeh_references  # noqa: E402
from bokeh.document import Document  # noqa: E402
from bokeh.model import Model  # noqa: E402
from bokeh.model.util import collect_models  # noqa: E402
from bokeh.models import ColumnDataSource, GlyphRenderer, Scatter  # noqa: E402


def _ids(models) -> set[str]:
    return {m.id for m in models}


def _bokehs(doc) -> set[str]:
    return _ids(m for root in doc.roots for m in collect_models(root))


@pytest.fixture
def walk(monkeypatch):
    """The faster walk installed for one test (from Bokeh's own), as it was restored after it."""
    monkeypatch.setattr(Model, "references", bokeh_references.BOKEH_REFERENCES)
    assert bokeh_references.install()
    assert bokeh_references.install()  # again: nothing more happens
    yield


def test_the_whole_app_after_every_tab_and_preset(walk, app):
    """Served as a session: the document's models (recomputed with the faster walk) equal
    Bokeh's walk from the roots after the opening, each tab's first showing and each preset."""
    from batscope.app.factory import TABS
    from panel.io.state import set_curdoc

    doc = Document()
    with set_curdoc(doc):
        app.template.server_doc(doc)
        checked = [len(doc.models)]
        assert _ids(doc.models) == _bokehs(doc)
        for k in range(1, len(TABS)):
            app.tabs.active = k
            assert _ids(doc.models) == _bokehs(doc), list(TABS)[k]
            checked.append(len(doc.models))
        app._network_card.collapsed = False  # the sidebar cards built on opening
        app._training_card.collapsed = False
        for name in ("convergence-ttfs", "lesson-seed", "mnist-net3", "convergence"):
            app.preset = name
            assert _ids(doc.models) == _bokehs(doc), name
            checked.append(len(doc.models))
    assert checked[0] > 50 and max(checked) > 1000  # the walks compared on real documents


def test_defaults_made_per_instance_are_found_and_fixed_ones_skipped(walk):
    """A renderer left with its default view (a model made per instance) and no hover glyph (a
    fixed default, skipped): the same models as Bokeh's walk, the view among them."""
    renderer = GlyphRenderer(data_source=ColumnDataSource({"x": [0]}), glyph=Scatter(x="x"))
    ours = bokeh_references.collect_references(renderer)
    assert _ids(ours) == _ids(collect_models(renderer))
    assert renderer.view in ours and renderer.hover_glyph is None
    assert ("hover_glyph", True) in bokeh_references._ref_properties(GlyphRenderer)
    assert ("view", False) in bokeh_references._ref_properties(GlyphRenderer)


def test_themed_values_are_read_through_bokeh(walk):
    """A value a theme gives is read as Bokeh reads it (the app's documents carry a theme)."""
    from bokeh.plotting import figure
    from bokeh.themes import Theme

    doc = Document()
    doc.theme = Theme(json={"attrs": {"Plot": {"above": [], "toolbar_location": None}}})
    fig = figure()
    fig.line([0, 1], [1, 0])
    doc.add_root(fig)
    assert "above" in fig.themed_values()  # a property that can hold models, themed
    assert _ids(bokeh_references.collect_references(fig)) == _ids(collect_models(fig))
    assert _ids(doc.models) == _bokehs(doc)


def test_bokeh_is_left_alone_when_its_internals_differ(monkeypatch):
    """If Bokeh's internals change under the walk (a method gone, or a walk that no longer
    agrees on a figure), install() keeps Bokeh's own walk."""
    monkeypatch.setattr(Model, "references", bokeh_references.BOKEH_REFERENCES)
    before = Model.references
    monkeypatch.setattr(bokeh_references, "_REF_PROPERTIES", {})

    def gone(cls):
        raise AttributeError("properties_with_refs is gone")

    with monkeypatch.context() as m:
        m.setattr(Model, "properties_with_refs", classmethod(gone))
        assert bokeh_references.install() is False
    monkeypatch.setattr(bokeh_references, "_visit_children", lambda model, visit: None)
    assert bokeh_references.install() is False
    assert Model.references is before
