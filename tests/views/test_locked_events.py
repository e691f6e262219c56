"""widgets/locked_events.py: Panel's widget events ask Bokeh for the document lock once it is
installed. The behaviour itself (type a value, click at once, in Chromium) is tested in
tests/ui/test_training.py."""

from functools import partial

import panel as pn
from batscope.widgets.locked_events import install
from panel.reactive import Syncable


def test_an_event_scheduled_by_panel_asks_for_the_lock_and_installing_twice_wraps_once():
    install()
    install()
    coroutine = Syncable._event_coroutine
    assert coroutine.lock is True
    assert not getattr(coroutine.__wrapped__, "lock", False)  # Panel's own, wrapped once
    # what panel.io.server.async_execute reads from the partial Panel schedules
    scheduled = partial(pn.widgets.Button()._event_coroutine, None, None)
    assert scheduled.func.lock is True
