"""A session is cheap to open and gives everything back when it closes (issue 9, item 7).

Opening builds the sidebar and the visible tab only; a tab's views are built when it is first
shown. Sessions served and closed over the websocket leave no app object, no training thread
and no live Bokeh document behind.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import threading
import time
import weakref
from pathlib import Path

import pytest

pn = pytest.importorskip("panel")

ROOT = Path(__file__).resolve().parents[2]


def load_room():
    """``benchmarks/room.py`` (not a package): its websocket participant drives these tests."""
    spec = importlib.util.spec_from_file_location("room_benchmark", ROOT / "benchmarks" / "room.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_only_the_visible_tab_is_built_and_others_on_first_show():
    from batscope.app.factory import TABS, create_app

    app = create_app()
    try:
        assert set(app.views) == {"raster", "membrane"}  # the Activity tab
        bodies = app._tab_bodies
        assert [len(b.objects) > 0 for b in bodies] == [True] + [False] * (len(TABS) - 1)
        app.tabs.active = 1
        assert set(TABS["Learning"]) <= set(app.views)
        shown = [app.views[n].__panel__() for n in TABS["Learning"]]
        assert all(a is b for a, b in zip(bodies[1].objects, shown, strict=True))
        metrics = app.views["metrics"]
        app.tabs.active = 0
        app.tabs.active = 1
        assert app.views["metrics"] is metrics  # built once
        assert "sparsity" not in app.views and "editor" not in app.views
    finally:
        app.controller.shutdown()
        app.sweep.shutdown()


def test_hidden_view_gets_the_rows_it_missed_when_first_shown():
    from batscope.app.factory import create_app

    from .test_session import _snap

    app = create_app()
    try:
        app.gates["metrics"].update([_snap(0), _snap(1)])
        assert "metrics" not in app.views  # hidden: held, not built
        app.tabs.active = 1
        app._flush_shown()
        assert list(app.views["metrics"].sources["train"].data["step"]) == [0, 1]
    finally:
        app.controller.shutdown()
        app.sweep.shutdown()


def test_opening_leaves_the_settings_cards_and_hidden_parts_out_of_the_document(monkeypatch):
    """What keeps an opening cheap: every model costs the server at each session's opening."""
    from batscope.app.factory import create_app
    from batscope.widgets.builder import NetworkBuilder
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    rebuilds = []
    rebuild = NetworkBuilder._rebuild
    monkeypatch.setattr(
        NetworkBuilder, "_rebuild", lambda self: (rebuilds.append(1), rebuild(self))[1]
    )
    doc = Document()
    with set_curdoc(doc):
        app = create_app()
        app.template.server_doc(doc)
    try:
        # the Network and Training cards open collapsed, their inputs not even built; their
        # titles say what is inside
        assert app._builder is None and app._form is None and rebuilds == []
        network, training = app._network_card, app._training_card
        assert network.collapsed and training.collapsed
        assert not network.objects and not training.objects
        network_title, training_title = app._network_title, app._training_title
        assert network_title.object == "Network: 4-2"  # the convergence task's (default preset)
        assert training_title.object == "Training: convergence, spike_count, sgd λ=0.1, 50 epochs"
        in_doc = {m.id for m in doc.models}
        raster, membrane = app.views["raster"], app.views["membrane"]
        # figures with nothing to show yet (the rasters before the first spikes, the channel
        # image, an empty membrane plot) are not even built: their Python objects cost the
        # opening too; the page says what will be there instead
        assert not {"exact_fig", "binned_fig", "channel_fig"} & set(vars(raster))
        assert "fig" not in vars(membrane)
        for fig in (raster.exact_fig, raster.binned_fig, raster.channel_fig, membrane.fig):
            assert fig.id not in in_doc
        # opened, a card is filled once, with the preset's hidden controls already applied
        network.collapsed = training.collapsed = False
        builder, form = app.builder.__panel__(), app.form.__panel__()
        assert network.objects == [builder] and training.objects == [form]
        assert len(rebuilds) == 1
        network.collapsed = True
        network.collapsed = False
        assert network.objects == [builder] and len(rebuilds) == 1
        hidden = [w for w in app.form.inputs.values() if not w.visible]
        assert hidden and all(not w._models for w in hidden)  # no Bokeh model for them
        assert all(w.visible for w in _grid_inputs(app.builder.__panel__()))
        app.network.add_layer(0)
        app.training.lr = 0.05
        assert network_title.object == "Network: 4-2-2"
        assert training_title.object == "Training: convergence, spike_count, sgd λ=0.05, 50 epochs"
        assert network.header.object is network_title.model  # a text set in place, not rebuilt
    finally:
        app.controller.shutdown()
        app.sweep.shutdown()


def _grid_inputs(layout) -> list:
    return [w for grid in layout.select(pn.GridBox) for w in grid.objects]


def _training_threads():
    return [t for t in threading.enumerate() if t.name == "batscope-training" and t.is_alive()]


def _wait(pred, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        gc.collect()
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def test_closed_sessions_are_collected_and_their_threads_stopped(monkeypatch):
    import batscope.app.warm  # noqa: F401  (compiles the kernels once, as `--setup` does)
    from batscope.app import session as session_module
    from batscope.app.factory import create_app, prepare_session

    releases = []
    release = session_module.release_memory
    monkeypatch.setattr(session_module, "RELEASE_DELAY_S", 0.1)
    monkeypatch.setattr(
        session_module, "release_memory", lambda: (releases.append(1), release())[1]
    )

    room = load_room()
    apps, docs = [], []

    def make():
        prepare_session()
        app = create_app()
        apps.append(weakref.ref(app))
        docs.append(weakref.ref(pn.state.curdoc))
        return app.template

    port = room.free_port()
    server = pn.serve(
        {"main": make},
        port=port,
        address=room.HOST,
        threaded=True,
        show=False,
        check_unused_sessions_milliseconds=300,
        unused_session_lifetime_milliseconds=600,
    )
    url = f"http://{room.HOST}:{port}/main"

    async def visit(n: int) -> None:
        participants = [room.WsParticipant(url, timeout=60) for _ in range(n)]
        for p in participants:
            await p.open()
        first = participants[0]
        await first.click("Step ›", first.find(css_class="run-status"))  # a paused run
        await first.show_tab(first.find("Tabs", css_class="main-tabs"), 1)
        # a HoloViews tab: HoloViews' process-wide options cache must not keep the session
        second = participants[1]
        await second.show_tab(second.find("Tabs", css_class="main-tabs"), 4)
        assert len(_training_threads()) >= 1
        for p in participants:
            assert p.errors == []
            await p.close()

    try:
        room.Server.wait_port(port)
        asyncio.run(visit(3))
        assert len(apps) == 3
        assert _wait(lambda: all(r() is None for r in apps), 30), "a closed session's app lives on"
        # a document may outlive its app by a few seconds (the server's last callbacks)
        assert _wait(lambda: all(r() is None for r in docs), 30), "a closed session's doc lives on"
        assert _wait(lambda: _training_threads() == [], 10)
        assert _wait(lambda: releases, 10)  # the heap was handed back after the closings
    finally:
        server.stop()


def test_room_client_drives_a_served_app():
    """The benchmark's participants (one training, one exploring) against `batscope serve`."""
    room = load_room()
    server = room.Server(room.free_port(), warm=False)
    try:
        server.wait_ready(120)
        record, samples = asyncio.run(
            room.room(server, participants=2, browsers=0, trainers=1, seconds=4.0, seed=1)
        )
        assert record.errors == [], record.errors
        assert len(record.ready) == 2
        assert record.latency.get("play") and len(record.all_latencies()) >= 3
        assert samples and all(rss > 0 for _, rss in samples)
        cost = asyncio.run(room.open_cost(server, 1))["server_cpu_s_per_open"]
        assert cost["n"] == 1 and cost["p50"] > 0
    finally:
        server.stop()
    errors, _closed = server.errors()
    assert errors == []
    assert any("127.0.0.1" in line for line in server.log)  # loopback only


def test_one_participants_actions_send_nothing_to_another():
    """Sessions are apart: while one participant shows tabs and steps a run, an idle
    participant's page gets no update (Panel's template spinner followed the whole process's
    busy state, so each event of anyone patched every open page)."""
    room = load_room()
    server = room.Server(room.free_port(), warm=False)

    async def visit():
        active, idle = room.WsParticipant(server.url, 60), room.WsParticipant(server.url, 60)
        try:
            await active.open()
            await idle.open()
            await asyncio.sleep(1.0)  # the idle page's own opening work
            before = len(idle.received)
            tabs = active.find("Tabs", css_class="main-tabs")
            await active.show_tab(tabs, 1)
            await active.click("Step ›", active.find(css_class="run-status"))
            await active.show_tab(tabs, 4)
            await asyncio.sleep(1.0)
            assert len(active.received) > 0
            return idle.received[before:]
        finally:
            await active.close()
            await idle.close()

    try:
        server.wait_ready(120)
        assert asyncio.run(visit()) == []
    finally:
        server.stop()
