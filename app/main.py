"""The served script: ``panel serve app/main.py`` (re-executed for every browser session)."""

import holoviews as hv
import panel as pn
from batscope.app.factory import create_app

pn.extension(notifications=False, sizing_mode="stretch_width")
hv.extension("bokeh")

create_app().servable(title="batscope")
