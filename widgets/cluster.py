"""Where a session's sweeps run: the "use cluster" switch and the Dask dashboard link.

The switch edits the session's ``training.sweep_remote.ClusterChoice``; it is disabled, with a
note saying why, where the server has no Dask scheduler. The dashboard link comes from the Dask
client of the server's own scheduler and reaches the page only as an http(s) URL.
"""

from __future__ import annotations

import html

import panel as pn
from batscope.training.sweep_remote import ClusterChoice, dashboard_href


def cluster_toggle(choice: ClusterChoice) -> pn.Column:
    """The "use cluster" switch and its note."""
    switch = pn.widgets.Checkbox.from_param(
        choice.param.use_cluster,
        label="use cluster",
        disabled=not choice.available,
        css_classes=["use-cluster"],
    )
    note = pn.pane.Markdown(choice.note, css_classes=["cluster-note"], margin=(0, 5))

    def follow(event) -> None:
        note.object = choice.note

    choice.param.watch(follow, "use_cluster")
    return pn.Column(switch, note, margin=0)


def dashboard_html(link: str) -> str:
    """ " · on a Dask cluster (dashboard)" with the link, or "" when ``link`` is not http(s)."""
    href = dashboard_href(link)
    if not href:
        return ""
    href = html.escape(href, quote=True)
    return (
        f' · on a Dask cluster (<a class="dask-dashboard" href="{href}" target="_blank" '
        'rel="noopener noreferrer">Dask dashboard</a>)'
    )
