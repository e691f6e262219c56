"""Every widget event of a served page runs under its document's lock, as our views need.

Panel handles a widget event (a button click, an upload's chunk, Enter in an input) inside the
Bokeh document's lock, as Bokeh runs every callback of a session, except when the event arrives
while a typed value still waits out Panel's debounce. Type a number and click a button: the
input's blur sends the value and the click together, and Panel then runs the pending change and
the click on the next tick *without* the lock (``Syncable._event_coroutine``, scheduled through
``panel.io.server.async_execute``). Our views change raw Bokeh models, which is what keeps a
tick cheap (``LiveText``, ``feed`` in widgets/live.py); a raw change made without the lock
raises ``_pending_writes should be non-None`` in the Bokeh server. The click then stops
half-way (a removed layer still shown), and Bokeh's ``patch_curdoc``, left by the exception,
keeps the document on its process-wide curdoc stack: every later standalone render in the
process (the HTML report, a PNG) sees a destroyed document.

:func:`install` marks Panel's event coroutine with ``pn.io.with_lock``, Panel's own way to ask
Bokeh for the lock, so that an event and the change it flushes run as they run when nothing is
pending. Every page that shows these views installs it: each session of the app
(``app.factory.prepare_session``), the instructor's page and :class:`NetworkViews` (a notebook
or a script of one's own). ``tests/ui/test_training.py`` types a value and clicks at once in
Chromium.
"""

from __future__ import annotations

import panel as pn
from panel.reactive import Syncable


def install() -> None:
    """Run Panel's widget events under the document lock in this process (idempotent)."""
    if not getattr(Syncable._event_coroutine, "lock", False):
        Syncable._event_coroutine = pn.io.with_lock(Syncable._event_coroutine)
