"""The served script: ``panel serve app/main.py`` (re-executed for every browser session)."""

import panel as pn
from batscope.app.bokeh_references import install
from batscope.app.factory import create_app
from batscope.app.room import server_room
from batscope.app.room_join import join_room

# every extension a tab may need, declared by each session: a page includes only the declared
# extensions' scripts, and the Code & export tab (with its FileDropper) is built after the page
pn.extension("filedropper", notifications=False, sizing_mode="stretch_width")
install()  # the faster walk of the document's models (once per process)

app = create_app()
room = server_room()
if room is not None:  # batscope serve --room: the instructor's page lists this session
    join_room(room, app)
app.servable(title="batscope")
