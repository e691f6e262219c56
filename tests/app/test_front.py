"""``batscope serve --workers N``: the front that spreads a room over N serving processes
(``app/front.py``), the processes behind it (``app/workers.py``), and the server's limits they
share: training slots as lock files (``engine/process_locks.py``) and one memory budget
(``training/resources.py``'s ledger)."""

from __future__ import annotations

import asyncio
import io
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from batscope.app.cli import main
from batscope.app.front import Front, Router, listen, session_in_page, session_of_token
from batscope.app.workers import RESTARTS, WorkerPool
from batscope.engine.process_locks import SlotFiles, forget_process
from batscope.engine.slots import SlotPool, training_slots
from batscope.training.resources import BudgetRefused, MemoryBroker, ServerLedger, SessionAccount
from bokeh.util.token import generate_jwt_token, generate_session_id

from .test_session_cost import load_room

pn = pytest.importorskip("panel")


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


# -- the router ------------------------------------------------------------------------------------
def test_new_pages_alternate_and_go_to_the_least_busy_process():
    router = Router(3)
    assert [router.choose() for _ in range(4)] == [0, 1, 2, 0]  # idle: in turn
    router.page_served("s1", 1)
    router.connect("s1")
    router.page_served("s2", 2)  # served, not yet connected: counted
    assert [router.load(k) for k in range(3)] == [0, 1, 1]
    assert router.choose() == 0
    router.disconnect(1)
    assert router.load(1) == 0


def test_a_websocket_goes_to_the_process_that_built_its_page():
    router = Router(2)
    router.page_served("a", 1)
    router.page_served("b", 0)
    assert router.connect("a") == 1 and router.connect("b") == 0
    assert router.load(0) == router.load(1) == 1
    # a session the front never served (the server restarted under an open page): a new choice
    assert router.connect("unknown") in (0, 1)
    assert router.connect(None) in (0, 1)


def test_pages_that_never_connect_are_forgotten_and_the_memory_is_bounded():
    clock = Clock()
    router = Router(2, pending_s=60.0, max_pending=3, clock=clock)
    router.page_served("old", 0)
    clock.now = 61.0
    assert router.load(0) == 0  # expired: Bokeh has discarded that session too
    for k in range(5):
        router.page_served(f"s{k}", 1)
    assert router.load(1) == 3  # only the newest 3 are remembered
    router.forget(1)  # process 2 restarted: its sessions are gone
    assert router.load(1) == 0


def test_session_ids_come_from_bokeh_tokens_only():
    sid = generate_session_id()
    token = generate_jwt_token(sid)
    assert session_of_token(token) == sid
    page = b'<script>{"token":"' + token.encode() + b'","roots":{}}</script>'
    assert session_in_page(page) == sid
    for junk in ("", "bokeh", "x.y.z", "<script>", "a" * 5000):
        assert session_of_token(junk) is None
    assert session_in_page(b"<html>no token</html>") is None


# -- the limits the processes share ---------------------------------------------------------------
def test_training_slots_are_shared_by_pools_that_share_a_folder(tmp_path):
    """Two pools on one folder stand for two processes (a file lock is per open file, so two
    pools of one process exclude each other as two processes do)."""
    a = training_slots({"BATSCOPE_MAX_TRAININGS": "2", "BATSCOPE_SHARED_DIR": str(tmp_path)})
    b = SlotPool(2, SlotFiles(tmp_path, 2))
    first, second = a.ticket(), b.ticket()
    assert first.holding and second.holding
    queued = b.ticket()  # both slots held, one by each "process"
    assert not queued.holding and queued.position == 1 and a.free == b.free == 0
    assert not queued.wait(0.3)
    first.leave()  # the other process gives its slot back: the queue's head takes it
    assert queued.wait(5.0) and queued.position == 0
    assert not a.acquire(blocking=False)
    queued.leave()
    assert a.acquire(blocking=False) and b.free == 0
    a.release()
    second.leave()
    assert a.free == 2
    with pytest.raises(ValueError, match="released more often"):
        a.release()


def test_the_processes_queues_form_one_line(tmp_path):
    """A process that frees a slot does not hand it to its own queue while another process's
    run has waited longer (the two pools stand for two live processes)."""
    import os

    a = SlotPool(1, SlotFiles(tmp_path, 1, pid=os.getpid()))
    b = SlotPool(1, SlotFiles(tmp_path, 1, pid=os.getppid()))
    running = a.ticket()
    theirs = b.ticket()  # waits first, in the other process
    mine = a.ticket()  # waits after it, here
    assert running.holding and not theirs.holding and not mine.holding
    assert (tmp_path / f"queue-head-{os.getppid()}").exists()
    running.leave()
    assert not mine.wait(0.3)  # not handed the slot its own process freed
    assert theirs.wait(5.0)
    assert not (tmp_path / f"queue-head-{os.getppid()}").exists()  # nobody waits there now
    (tmp_path / "queue-head-4242").write_text("1")  # a process gone: stale, then forgotten
    (tmp_path / "memory-held-4242").write_text("9")
    forget_process(tmp_path, 4242)
    assert not list(tmp_path.glob("*-4242"))
    theirs.leave()
    assert mine.wait(5.0)
    mine.leave()


def test_a_slot_held_by_a_process_that_dies_is_free_again(tmp_path):
    import subprocess

    code = (
        "import sys, time; from batscope.engine.process_locks import SlotFiles, forget_process; "
        f"fd = SlotFiles({str(tmp_path)!r}, 1).take(); print(fd is not None, flush=True); "
        "time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "True"
        pool = SlotPool(1, SlotFiles(tmp_path, 1))
        ticket = pool.ticket()
        assert not ticket.holding
        proc.kill()  # no clean-up runs: the kernel drops the lock
        assert ticket.wait(5.0)
        ticket.leave()
    finally:
        proc.kill()
        proc.wait()


def test_one_memory_budget_for_all_processes(tmp_path):
    import os
    import subprocess

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        here = MemoryBroker(1000, 800, ServerLedger(tmp_path))
        there = MemoryBroker(1000, 800, ServerLedger(tmp_path, pid=other.pid))
        held = SessionAccount(there).reserve(700, "their run")
        with pytest.raises(BudgetRefused, match="300 B is free of the server's 1.0 kB budget"):
            SessionAccount(here).reserve(400, "this run")
        held.release()
        with SessionAccount(here).reserve(400, "this run"):
            assert int((tmp_path / f"memory-held-{os.getpid()}").read_text()) == 400
        SessionAccount(there).reserve(700, "their run")
        other.kill()  # a process that ended holds nothing, whatever its file says
        other.wait()
        SessionAccount(here).reserve(800, "this run")
    finally:
        other.kill()
        other.wait()


def test_room_and_dev_need_one_process_and_bad_worker_counts_are_refused(capsys):
    for argv in (["serve", "--workers", "2", "--room"], ["serve", "--workers", "2", "--dev"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "--room needs one" in capsys.readouterr().err
    for n in ("0", "999"):
        with pytest.raises(SystemExit):
            main(["serve", "--workers", n])
        assert "--workers must be between 1 and 64" in capsys.readouterr().err


# -- the process pool -----------------------------------------------------------------------------
def _sleeper(port: int) -> list[str]:
    return [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


def test_a_process_that_exits_is_started_again_and_one_that_keeps_exiting_stops_the_server():
    out = io.StringIO()
    clock = Clock()
    pool = WorkerPool(_sleeper, [{}, {}], out=out, clock=clock)
    pool.start()
    try:
        lost = []
        first = pool.workers[1].proc
        first.kill()
        first.wait()
        pool.check(lambda k, pid: lost.append((k, pid)))
        assert lost == [(1, first.pid)] and pool.workers[1].proc is not first
        assert pool.workers[1].proc.poll() is None
        assert "serving process 2 exited" in out.getvalue()
        with pytest.raises(RuntimeError, match=f"exited {RESTARTS} times"):
            for _ in range(RESTARTS):
                pool.workers[1].proc.kill()
                pool.workers[1].proc.wait()
                pool.check(lambda k, pid: lost.append((k, pid)))
    finally:
        pool.stop(grace=5)
    assert all(w.proc.poll() is not None for w in pool.workers)


# -- the front before stand-in processes that count what they are asked at once --------------------
def test_a_process_builds_one_page_at_a_time_and_files_are_not_held_back():
    from tornado import web
    from tornado.httpclient import AsyncHTTPClient

    busy = {"now": 0, "most": 0}

    class Slow(web.RequestHandler):
        async def get(self, path):
            busy["now"] += 1
            busy["most"] = max(busy["most"], busy["now"])
            await asyncio.sleep(0.2)
            busy["now"] -= 1
            self.finish(f"<html>{path}</html>")

    async def scenario():
        ports = [_free_port(), _free_port()]
        upstreams = [web.Application([(r"(.*)", Slow)]).listen(p, "127.0.0.1") for p in ports]
        front_port = _free_port()
        server = listen(Front(Router(2), lambda k: ports[k], []), front_port, "127.0.0.1")
        client = AsyncHTTPClient(force_instance=True)
        try:
            url = f"http://127.0.0.1:{front_port}"
            pages = await asyncio.gather(*(client.fetch(f"{url}/main?k={k}") for k in range(6)))
            pages_most, busy["most"] = busy["most"], 0
            files = await asyncio.gather(*(client.fetch(f"{url}/static/{k}.js") for k in range(6)))
            return pages, pages_most, files, busy["most"]
        finally:
            client.close()
            server.stop()
            for u in upstreams:
                u.stop()

    pages, pages_most, files, files_most = asyncio.run(scenario())
    assert [p.code for p in pages + files] == [200] * 12
    assert pages_most == 2  # one page per process, both processes at once
    assert files_most > 2  # files do not wait for each other


# -- the front, in-process, before two servers that say who they are -------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


@pytest.fixture
def front():
    """Two Panel servers, each page naming its server, behind a front on a free port."""
    ports = [_free_port(), _free_port()]
    front_port = _free_port()
    origins = [f"127.0.0.1:{front_port}", f"localhost:{front_port}"]
    servers = [
        pn.serve(
            lambda name=name: pn.Column(
                pn.pane.Markdown(f"served by {name}"), pn.widgets.Button(label="Go")
            ),
            port=port,
            threaded=True,
            show=False,
            websocket_origin=origins,
        )
        for name, port in zip(("A", "B"), ports, strict=True)
    ]
    holder, ready = {}, threading.Event()

    def run():
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        router = Router(2)
        holder["front"] = Front(router, lambda k: ports[k], origins, pages=("",))
        holder["server"] = listen(holder["front"], front_port, "127.0.0.1")
        holder["loop"] = loop
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    for port in ports:  # pn.serve(threaded=True) returns before its server listens
        _wait_listening(port)
    try:
        yield f"http://127.0.0.1:{front_port}", holder, servers
    finally:
        holder["loop"].call_soon_threadsafe(holder["loop"].stop)
        thread.join(10)
        for s in servers:
            s.stop()


def test_each_page_and_its_websocket_stay_on_one_process_and_pages_alternate(front):
    url, holder, _ = front
    room = load_room()

    async def visit():
        texts = []
        for _ in range(4):
            p = room.WsParticipant(url, timeout=30.0)
            await p.open()
            texts.append(
                " ".join(str(m.get("attributes", {}).get("text", "")) for m in p.models.values())
            )
            await p.close()
        return texts

    texts = asyncio.run(visit())
    served = ["A" if "served by A" in t else "B" if "served by B" in t else "?" for t in texts]
    # each page's document came from the process that built it, and openings alternated
    assert served == ["A", "B", "A", "B"]


def test_the_front_refuses_foreign_origins_and_other_methods_and_says_when_a_process_is_down(front):
    url, holder, servers = front
    room = load_room()

    async def foreign():
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        req = HTTPRequest(
            url.replace("http", "ws") + "/ws", headers={"Origin": "http://evil.example"}
        )
        await websocket_connect(req, subprotocols=["bokeh", "x"])

    from tornado.httpclient import HTTPClientError

    with pytest.raises(HTTPClientError) as exc:
        asyncio.run(foreign())
    assert exc.value.code == 403
    request = urllib.request.Request(f"{url}/", data=b"x" * 10, method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 405
    servers[1].stop()  # process B is gone: its pages get a clear answer, A's still open

    async def two_pages():
        results = []
        for _ in range(2):
            try:
                p = room.WsParticipant(url, timeout=20.0)
                await p.open()
                await p.close()
                results.append("ok")
            except Exception as exc:  # noqa: BLE001
                results.append(str(exc))
        return results

    results = asyncio.run(two_pages())
    assert "ok" in results
    assert any("502" in r for r in results)


def test_the_front_passes_the_compressed_scripts_on(front):
    """The serving processes send scripts gzip-compressed (app/static_gzip.py, a plugin of
    theirs, imported here); the front passes the browser's Accept-Encoding and the bytes on."""
    import gzip

    from batscope.app import static_gzip  # noqa: F401

    url, holder, _ = front
    path = "/static/js/bokeh.min.js"
    with urllib.request.urlopen(holder["front"].url(0, path), timeout=30) as r:
        plain = r.read()
    request = urllib.request.Request(url + path, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=30) as r:
        assert r.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(r.read()) == plain


# -- the real command ------------------------------------------------------------------------------
def test_serve_workers_starts_two_processes_and_a_stop_ends_them_all():
    """``batscope serve --workers 2``: both processes serve behind the front's address, and a
    SIGTERM to the command (not to its process group) ends them with it: none is left behind."""
    import os
    import re
    import signal
    import subprocess

    cmd = [sys.executable, "-m", "batscope.app", "serve", "--workers", "2", "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--no-warm"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = 120.0
        while deadline > 0 and not any("serving processes behind" in x for x in lines):
            assert proc.poll() is None, "".join(lines)
            threading.Event().wait(0.2)
            deadline -= 0.2
        url = re.search(r"behind (http://\S+)", "".join(lines)).group(1)
        pids = [int(m.group(1)) for x in lines if (m := re.search(r"process id: (\d+)", x))]
        assert len(pids) == 2 and proc.pid not in pids
        with urllib.request.urlopen(url, timeout=60) as page:
            assert b'"token"' in page.read()  # a page, built by one of the processes
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert any(x.startswith("[worker 1]") for x in lines)
    assert any(x.startswith("[worker 2]") for x in lines)
