"""The faster serialization of a model sends exactly what Bokeh's own sends."""

import pytest

pytest.importorskip("panel")

from batscope.app import bokeh_serialization  # noqa: E402
from bokeh.core.has_props import HasProps  # noqa: E402
from bokeh.core.property.descriptors import UnsetValueError  # noqa: E402
from bokeh.document import Document  # noqa: E402
from bokeh.models import GlyphRenderer  # noqa: E402

QUERY = "query_properties_with_values"


@pytest.fixture
def faster(monkeypatch):
    """The faster query installed for one test (from Bokeh's own), restored after it."""
    monkeypatch.setattr(HasProps, QUERY, bokeh_serialization.BOKEH_QUERY)
    assert bokeh_serialization.install()
    assert bokeh_serialization.install()  # again: nothing more happens
    assert getattr(HasProps, QUERY) is bokeh_serialization.query_properties_with_values
    yield


def _both(monkeypatch, produce):
    """``produce()`` with the faster query, then with Bokeh's."""
    ours = produce()
    with monkeypatch.context() as m:
        m.setattr(HasProps, QUERY, bokeh_serialization.BOKEH_QUERY)
        theirs = produce()
    return ours, theirs


def test_the_whole_app_after_every_tab_and_preset(faster, app, monkeypatch):
    """Served as a session: the whole document serializes the same after the opening, each
    tab's first showing and each preset (the theme and every view's figures included)."""
    from batscope.app.factory import TABS
    from panel.io.state import set_curdoc

    doc = Document()

    def check(what):
        ours, theirs = _both(monkeypatch, lambda: doc.to_json(deferred=False))
        assert ours == theirs, what

    with set_curdoc(doc):
        app.template.server_doc(doc)
        check("opening")
        for k in range(1, len(TABS)):
            app.tabs.active = k
            check(list(TABS)[k])
        app._network_card.collapsed = False
        app._training_card.collapsed = False
        for name in ("convergence-ttfs", "lesson-seed", "mnist-net3", "convergence"):
            app.preset = name
            check(name)
    assert len(doc.models) > 1000  # compared on a real document


def test_a_required_value_never_given_is_refused_or_reported_as_by_bokeh(faster, monkeypatch):
    renderer = GlyphRenderer()  # data_source and glyph are required
    for include_undefined in (False, True):

        def produce(flag=include_undefined):
            try:
                return renderer.properties_with_values(
                    include_defaults=False, include_undefined=flag
                )
            except UnsetValueError as exc:
                return f"refused: {exc}"

        ours, theirs = _both(monkeypatch, produce)
        assert ours == theirs
    assert str(ours).count("Undefined") == 2  # reported with include_undefined=True


def test_a_default_made_per_instance_but_never_made_is_made_as_by_bokeh(faster, monkeypatch):
    """A model given ``Intrinsic`` for a property whose default is made per instance skips it at
    construction; Bokeh's serialization makes it (and leaves it out), so the next one sends it."""
    from bokeh.core.property.singletons import Intrinsic
    from bokeh.models import ColumnDataSource, Scatter

    def serialized_twice(renderer):
        first = sorted(renderer.properties_with_values(include_defaults=False))
        return first, sorted(renderer.properties_with_values(include_defaults=False))

    def fresh():
        return GlyphRenderer(data_source=ColumnDataSource(), glyph=Scatter(), view=Intrinsic)

    ours, theirs = _both(monkeypatch, lambda: serialized_twice(fresh()))
    assert ours == theirs
    assert "view" not in ours[0] and "view" in ours[1]


def test_with_defaults_included_bokeh_answers(faster, monkeypatch):
    renderer = GlyphRenderer()
    ours, theirs = _both(
        monkeypatch,
        lambda: sorted(
            renderer.properties_with_values(include_defaults=True, include_undefined=True)
        ),
    )
    assert ours == theirs and len(ours) > 20


def test_bokeh_is_left_alone_when_the_two_disagree(monkeypatch):
    """If the faster query no longer gives Bokeh's result, install() keeps Bokeh's own."""
    monkeypatch.setattr(HasProps, QUERY, bokeh_serialization.BOKEH_QUERY)
    monkeypatch.setattr(bokeh_serialization, "_READ_ANYWAY", {})
    original = bokeh_serialization.query_properties_with_values

    def drops_everything(self, query, *, include_defaults=True, include_undefined=False):
        if include_defaults:
            return original(self, query, include_defaults=True)
        return {}

    monkeypatch.setattr(bokeh_serialization, "query_properties_with_values", drops_everything)
    assert bokeh_serialization.install() is False
    assert getattr(HasProps, QUERY) is bokeh_serialization.BOKEH_QUERY


def test_every_served_session_uses_it(monkeypatch):
    from batscope.app.factory import prepare_session

    monkeypatch.setattr(HasProps, QUERY, bokeh_serialization.BOKEH_QUERY)
    prepare_session()
    assert getattr(HasProps, QUERY) is bokeh_serialization.query_properties_with_values
