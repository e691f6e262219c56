"""A faster walk of a Bokeh document's model graph, the same set of models as Bokeh's own.

Each time a session's document gains models (a tab shown for the first time, a figure added),
Bokeh recomputes the set of models reachable from the document's roots by walking the whole
graph (``Model.references``), and the graph grows with every tab a participant opens: about 1 600
models once all tabs were shown. Bokeh's walk reads every property that can hold a model through
its descriptor, and for a property left at a fixed default that read evaluates the default again,
through the class's method resolution order, at every walk. Measured in-process on the whole app
(all tabs shown in turn, the patches serialized as a served session does): 2.0 s with Bokeh's
walk, 1.4 s with this one; an opening 0.24 s against 0.20 s. In a served room, that is event
loop time every participant waits for.

:func:`collect_references` reads the values a model holds directly and skips a property that
still has a fixed default only when that default holds no model. Everything else is read through
Bokeh as before: a themed value, and an unset default that is a new object per instance (Bokeh's
own walk creates such a default, for instance a renderer's view, and this walk creates it the
same way, so both serialize the same document).

:func:`install` replaces ``Model.references`` in the serving process, after checking on a
figure that both walks agree; it leaves Bokeh alone when they do not or when Bokeh's internals
have changed. ``tests/app/test_bokeh_references.py`` compares both walks on the whole app after
every tab and preset.
"""

from __future__ import annotations

import logging

from bokeh.model import Model
from bokeh.model.util import collect_models, visit_value_and_its_immediate_references

log = logging.getLogger(__name__)

_REF_PROPERTIES: dict[type, tuple[tuple[str, bool], ...]] = {}
BOKEH_REFERENCES = Model.references  # Bokeh's own walk, which install() replaces


def _holds_models(value) -> bool:
    found = []
    visit_value_and_its_immediate_references(value, found.append)
    return bool(found)


def _ref_properties(cls) -> tuple[tuple[str, bool], ...]:
    """The class's properties that can hold models, each with whether its default is fixed (the
    same object for every instance) and holds no model: such a property, left unset, is skipped."""
    props = _REF_PROPERTIES.get(cls)
    if props is None:
        found = []
        for name in cls.properties_with_refs():
            descriptor = cls.lookup(name)
            per_instance = (
                descriptor.property._may_have_unstable_default()
                or descriptor.is_unstable(cls.__overridden_defaults__.get(name))
            )
            skip = not per_instance and not _holds_models(descriptor.class_default(cls))
            found.append((name, skip))
        props = _REF_PROPERTIES[cls] = tuple(found)
    return props


def _visit_children(model, visit) -> None:
    """Call ``visit`` on each model that ``model``'s properties refer to directly."""
    values = model._property_values
    themed = model.themed_values()
    per_instance = model._unstable_default_values
    for name, skip in _ref_properties(type(model)):
        if name in values:
            value = values[name]
        elif themed is not None and name in themed:
            value = getattr(model, name)
        elif name in per_instance:
            value = per_instance[name]
        elif skip:
            continue
        else:  # a default made per instance and not made yet: Bokeh's walk makes it too
            value = getattr(model, name)
        visit_value_and_its_immediate_references(value, visit)


def collect_references(*values) -> set[Model]:
    """Every model reachable from ``values`` (models or containers of them), themselves included."""
    seen: dict[str, Model] = {}
    stack: list[Model] = []

    def queue(model) -> None:
        if model.id not in seen:
            stack.append(model)

    for value in values:
        visit_value_and_its_immediate_references(value, queue)
    while stack:
        model = stack.pop()
        if model.id not in seen:
            seen[model.id] = model
            _visit_children(model, queue)
    return set(seen.values())


def _references(self) -> set[Model]:
    return collect_references(self)


def example_figure():
    """A small figure (a hover tool, a legend, two glyphs) on which a replacement of Bokeh's
    internals checks itself against Bokeh's own before it is installed."""
    from bokeh.models import ColumnDataSource, HoverTool
    from bokeh.plotting import figure

    fig = figure(title="check", tools=[HoverTool()])
    fig.line("x", "y", source=ColumnDataSource({"x": [0.0], "y": [0.0]}), legend_label="a")
    fig.scatter([0.0], [1.0])
    return fig


def _agrees_on_a_figure() -> bool:
    fig = example_figure()
    return {m.id for m in collect_references(fig)} == {m.id for m in collect_models(fig)}


def install() -> bool:
    """Use :func:`collect_references` for ``Model.references`` in this process (idempotent).
    Returns whether it is in use: not when Bokeh's internals differ from what it reads."""
    if Model.references is _references:
        return True
    try:
        agrees = _agrees_on_a_figure()
    except (AttributeError, KeyError, TypeError) as exc:
        log.warning("Bokeh's own model walk kept: %s", exc)
        return False
    if not agrees:
        log.warning("Bokeh's own model walk kept: the faster walk disagrees on a figure")
        return False
    Model.references = _references
    return True
