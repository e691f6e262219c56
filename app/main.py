"""The served script: ``panel serve app/main.py`` (re-executed for every browser session)."""

from batscope.app.factory import create_app, prepare_session
from batscope.app.room import server_room
from batscope.app.room_join import join_room

prepare_session()
app = create_app()
room = server_room()
if room is not None:  # batscope serve --room: the instructor's page lists this session
    join_room(room, app)
app.servable(title="batscope")
