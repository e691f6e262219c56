"""The instructor's page, served by ``batscope serve --room`` at ``/instructor`` beside
``app/main.py`` (re-executed for every session; see ``app/instructor_page.py``)."""

import panel as pn
from batscope.app.instructor_page import instructor_app
from batscope.app.room import server_room
from batscope.widgets.locked_events import install as install_locked_events

pn.extension(notifications=False, sizing_mode="stretch_width")
install_locked_events()  # the participant mirror changes raw Bokeh models

pn.template.BootstrapTemplate(
    title="batscope: the room",
    main=[instructor_app(server_room(), pn.state.session_args)],
    busy_indicator=None,  # it would follow every participant's events (see app/factory.py)
).servable(title="batscope: the room")
