"""Bokeh's serialization of a model, without evaluating the defaults it then leaves out.

A served session sends every model it adds (a page opening, a tab's first showing, a new figure)
as its non-default properties: ``HasProps.properties_with_values(include_defaults=False)``.
Bokeh's ``query_properties_with_values`` reads every property of the model first and only then
drops those left at a fixed default, and reading such a property evaluates its default again,
through the class's method resolution order and the theme (Bokeh marks this "should happen
before get_value()"). A figure has about 30 models of 40 to 120 properties each: in a served
room, this was a tenth of the event loop's time (py-spy, ``benchmarks/room.py --action-cost``).
Measured with both in turn (``--open-cost 8`` and ``--action-cost 3``, 2026-11-29, two pairs):
the server's CPU per opening 0.280–0.285 s with Bokeh's, 0.245–0.250 s with this one; all
eight tabs' first showing 2.31–2.51 s against 1.83–2.05 s. In-process (the app's document built,
all tabs shown, the document serialized; the best of four, two runs each): 0.165 against
0.134 s to open, 1.81–1.85 against 1.36–1.37 s for the tabs.

:func:`query_properties_with_values` selects the same keys as Bokeh (set values, per-instance
defaults, themed values) before reading any value, and reads the selected ones through Bokeh's
descriptors as before. Read too, as Bokeh reads them, are a property left at a fixed default
that is ``Undefined`` (a required value never given: a model that Bokeh refuses to serialize is
refused the same way, and ``include_undefined=True`` still reports it) and a default made per
instance that was never made (reading it makes it, so that the next serialization sends it). With
``include_defaults=True`` nothing changes: every value is read by Bokeh's own method.

:func:`install` replaces the method in the serving process after checking on a figure and some
widgets that both give the same serialized document; it leaves Bokeh alone otherwise.
``tests/app/test_bokeh_serialization.py`` compares both on the whole app after every tab and
preset.
"""

from __future__ import annotations

import logging

from bokeh.core.has_props import HasProps
from bokeh.core.property.descriptors import PropertyDescriptor, UnsetValueError
from bokeh.core.property.singletons import Undefined
from bokeh.core.property.wrappers import PropertyValueContainer

from .bokeh_references import example_figure

log = logging.getLogger(__name__)

BOKEH_QUERY = HasProps.query_properties_with_values  # Bokeh's own, which install() replaces
_READ_ANYWAY: dict[type, frozenset[str]] = {}


def _read_anyway(cls) -> frozenset[str]:
    """The class's properties that are read even when left out: a fixed default ``Undefined``
    (a required value; reading it raises) and a default made per instance (reading it makes it,
    and the next serialization includes it). Both, as in Bokeh, before they are dropped."""
    names = _READ_ANYWAY.get(cls)
    if names is None:
        overrides = cls._overridden_defaults()
        found = []
        for name in cls.properties(_with_props=True):
            prop = getattr(cls.lookup(name), "property", None)
            if prop is None:  # an alias of another property: read as Bokeh reads it
                found.append(name)
                continue
            per_instance = prop._may_have_unstable_default() or PropertyDescriptor.is_unstable(
                cls.__overridden_defaults__.get(name)
            )
            if per_instance or overrides.get(name, prop._default) is Undefined:
                found.append(name)
        names = _READ_ANYWAY[cls] = frozenset(found)
    return names


def query_properties_with_values(
    self, query, *, include_defaults: bool = True, include_undefined: bool = False
) -> dict:
    """``HasProps.query_properties_with_values``, the same result; with
    ``include_defaults=False`` the values left out are not evaluated."""
    if include_defaults:
        return BOKEH_QUERY(self, query, include_defaults=True, include_undefined=include_undefined)
    selected = set(self._property_values) | set(self._unstable_default_values)
    themed = self.themed_values()
    themed_keys = set(themed) if themed is not None else set()
    selected |= themed_keys
    read_anyway = _read_anyway(type(self))
    result = {}
    for key in self.properties(_with_props=True):
        if key not in selected and key not in read_anyway:
            continue  # a fixed default: Bokeh evaluates it, then leaves it out
        descriptor = self.lookup(key)
        if not query(descriptor):
            continue
        try:
            value = descriptor.get_value(self)
        except UnsetValueError:  # a required value never given
            if not include_undefined:
                raise
            value = Undefined
        else:
            if key not in selected:
                continue
            if (
                key not in themed_keys
                and isinstance(value, PropertyValueContainer)
                and key in self._unstable_default_values
            ):
                continue  # an unmodified container default
        result[key] = value
    return result


def _serialized(doc) -> dict:
    """The whole document as a served session sends it."""
    return doc.to_json(deferred=False)


def _agrees_on_examples() -> bool:
    from bokeh.document import Document
    from bokeh.models import Select, Slider, TabPanel, Tabs

    fig = example_figure()
    widgets = [Slider(start=0, end=1, value=0.5), Select(options=["a", "b"], value="a")]
    doc = Document()
    doc.add_root(Tabs(tabs=[TabPanel(child=fig, title="f")] + [TabPanel(child=w) for w in widgets]))
    ours = _serialized(doc)
    HasProps.query_properties_with_values = BOKEH_QUERY
    try:
        theirs = _serialized(doc)
    finally:
        HasProps.query_properties_with_values = query_properties_with_values
    return ours == theirs


def install() -> bool:
    """Use :func:`query_properties_with_values` in this process (idempotent). Returns whether it
    is in use: not when it and Bokeh's serialize a figure and some widgets differently."""
    if HasProps.query_properties_with_values is query_properties_with_values:
        return True
    HasProps.query_properties_with_values = query_properties_with_values
    try:
        agrees = _agrees_on_examples()
    except Exception as exc:  # any change of Bokeh's internals: keep Bokeh's own, never fail
        log.warning("Bokeh's own serialization kept: %s", exc)
        agrees = False
    if not agrees:
        log.warning("Bokeh's own serialization kept: the faster one disagrees on an example")
        HasProps.query_properties_with_values = BOKEH_QUERY
    return agrees
