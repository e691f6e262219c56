"""A workshop room on one ``batscope serve``: many participants at once (issue 9, item 7).

Starts the real server (``python -m batscope.app serve``, listening on 127.0.0.1 only) and
drives it like a room: websocket participants that speak Bokeh's protocol to the served
``/main`` page exactly as a browser's page does (GET the page, open its websocket with the
page's session token, pull the document, then send clicks and value changes as Bokeh events and
wait for the server's document patches), plus a few real headless Chromium tabs through
Playwright. All open together; some train (Play) while the others explore (switch tabs, change
the preset, Step). Records page-ready times, click-to-update latencies, errors and the server's
memory (RSS) before, during and after. Every loop is bounded; the run stops by itself.

    python benchmarks/room.py                      # 30 participants: 27 websocket + 3 Chromium
    python benchmarks/room.py --participants 4 --browsers 1 --seconds 20 --after 75
    python benchmarks/room.py --open-cost 8         # server CPU seconds per page opened
    python benchmarks/room.py --action-cost 3       # ... per tab shown, preset chosen, Step
    python benchmarks/room.py --static-cost 10      # bytes and CPU of a page's scripts
    python benchmarks/room.py --workers 2           # the room on `batscope serve --workers 2`

Prints one JSON object (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from batscope.app.factory import TABS as APP_TABS

HOST = "127.0.0.1"  # loopback only
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# the app's own tab titles, in their order (a copy here once lacked "Sweeps": every later tab was
# misnamed and the last one never visited)
TABS = tuple(APP_TABS)
LIVE_TABS = [TABS.index(t) for t in ("Activity", "Learning", "Sparsity & latency")]
EXPLORER_PRESETS = ("convergence", "lesson-seed", "convergence-ttfs")
THINK_S = (0.5, 2.0)  # between one participant's actions: brisker than a person reading plots
SERVER_ERRORS = re.compile(r"\b(ERROR|Traceback|Exception)\b")
# a write to a websocket its page had just closed (a tab closed while an update was on its way)
CLOSED_SOCKET = re.compile(r"WebSocketClosedError|StreamClosedError")
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


# -- the server ---------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``python -m batscope.app serve`` in a subprocess, its log kept, its memory and CPU
    readable: those of its serving process, or with ``workers`` > 1, of the front and all the
    serving processes together."""

    def __init__(self, port: int, warm: bool = True, env: dict | None = None, workers: int = 1):
        self.port, self.workers = port, workers
        cmd = [sys.executable, "-m", "batscope.app", "serve", "--port", str(port)]
        if not warm:
            cmd.append("--no-warm")
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group: stop() ends the server with it
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.url = f"http://{HOST}:{port}/main"
        # `batscope serve` runs `panel serve` as its child: that process serves (with workers:
        # the CLI's own process is the front, and each worker is a `panel serve` child)
        self.pids: list[int] = []

    def read_log(self) -> None:
        while True:
            line = self.proc.stdout.readline()
            if not line:
                return
            self.log.append(line.rstrip())

    @staticmethod
    def wait_port(port: int, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with socket.create_connection((HOST, port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"nothing listens on port {port} after {timeout} s")

    def wait_ready(self, timeout: float = 300.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.read_log()
            if self.proc.poll() is not None:
                raise RuntimeError("server exited:\n" + "\n".join(self.log[-30:]))
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    pass
                pids = self._serving_pids()
                if len(pids) == self.workers and (
                    self.workers == 1 or any("serving processes behind" in x for x in self.log)
                ):
                    self.pids = pids + ([self.proc.pid] if self.workers > 1 else [])
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"server not ready in {timeout} s:\n" + "\n".join(self.log[-30:]))

    def _serving_pids(self) -> list[int]:
        """The serving processes' ids, from Bokeh's "process id" lines, once all are up."""
        if not any("Bokeh app running at" in line for line in self.log):
            return []
        return [int(m.group(1)) for x in self.log if (m := re.search(r"process id: (\d+)", x))]

    def rss_mb(self) -> float:
        total = 0.0
        for pid in self.pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the serving processes have used so far."""
        total = 0
        for pid in self.pids:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def log_records(self) -> list[str]:
        """The log as records: a timestamped line with the lines that follow it."""
        self.read_log()
        records: list[list[str]] = []
        for line in self.log:
            if LOG_RECORD.match(line) or not records:
                records.append([])
            records[-1].append(line)
        return ["\n".join(r) for r in records]

    def errors(self) -> tuple[list[str], int]:
        """The records that report an error, and how many of the others were writes to an
        already closed websocket (not counted as errors)."""
        errors, closed = [], 0
        for record in self.log_records():
            if SERVER_ERRORS.search(record):
                if CLOSED_SOCKET.search(record):
                    closed += 1
                else:
                    errors.append(record)
        return errors, closed

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL if it has not ended in 20 s."""
        group = self.proc.pid  # start_new_session: the group has the CLI process id
        os.killpg(group, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(10)
        self.read_log()


# -- a participant over the websocket -------------------------------------------------------------
def _models(obj, found: dict) -> None:
    """Index every model representation (``{"type": "object", "id", "name", "attributes"}``)."""
    if isinstance(obj, dict):
        if obj.get("type") == "object" and "id" in obj and "name" in obj:
            found[obj["id"]] = obj
        for value in obj.values():
            _models(value, found)
    elif isinstance(obj, list):
        for value in obj:
            _models(value, found)


class WsParticipant:
    """One participant's page, driven over Bokeh's websocket protocol (no browser)."""

    def __init__(self, url: str, timeout: float = 30.0):
        self.url, self.timeout = url, timeout
        self.models: dict[str, dict] = {}
        self.errors: list[str] = []
        self._waiters: list[tuple] = []
        self._acks: dict[str, asyncio.Future] = {}  # our patches' ids, until the server's OK
        self._shown = {0}  # tabs shown so far (the first is open)
        self.received: list[dict] = []  # every event the server has patched this page with
        self._ws = None
        self._reader = None

    # connection ----------------------------------------------------------------------------
    async def open(self) -> float:
        """GET the page, connect its websocket and pull the document; returns seconds taken."""
        from bokeh.client.websocket import WebSocketClientConnectionWrapper
        from bokeh.protocol import Protocol
        from bokeh.protocol.receiver import Receiver
        from tornado.httpclient import AsyncHTTPClient
        from tornado.websocket import websocket_connect

        t0 = time.perf_counter()
        # a client of its own: tornado's shared one queues requests beyond 10
        http = AsyncHTTPClient(force_instance=True)
        try:
            page = await http.fetch(self.url, request_timeout=self.timeout)
        finally:
            http.close()
        m = re.search(r'"token":"([^"]+)"', page.body.decode())
        if m is None:
            raise RuntimeError("no session token in the page")
        ws_url = self.url.replace("http://", "ws://") + "/ws"
        conn = await asyncio.wait_for(
            websocket_connect(ws_url, subprotocols=["bokeh", m.group(1)]), self.timeout
        )
        self._ws = WebSocketClientConnectionWrapper(conn)
        self._protocol, self._receiver = Protocol(), Receiver(Protocol())
        ack = await self._next_message()
        if ack.msgtype != "ACK":
            raise RuntimeError(f"expected ACK, got {ack.msgtype}")
        await self._protocol.create("PULL-DOC-REQ").send(self._ws)
        reply = await self._next_message()
        while reply.msgtype == "PATCH-DOC":  # sent before the pull: the pulled doc has it
            reply = await self._next_message()
        if reply.msgtype != "PULL-DOC-REPLY":
            raise RuntimeError(f"expected PULL-DOC-REPLY, got {reply.msgtype}")
        _models(reply.content["doc"], self.models)
        self._reader = asyncio.create_task(self._read())
        # what BokehJS sends once the page is drawn: Panel marks the session loaded on it
        await self._send([_bokeh_event("document_ready")])
        return time.perf_counter() - t0

    async def _next_message(self):
        while True:
            fragment = await asyncio.wait_for(self._ws._socket.read_message(), self.timeout)
            if fragment is None:
                raise ConnectionError("websocket closed by the server")
            msg = await self._receiver.consume(fragment)
            if msg is not None:
                return msg

    async def _read(self) -> None:
        """Apply the server's patches to the model index and wake whoever waits for them."""
        while True:
            fragment = await self._ws._socket.read_message()
            if fragment is None:
                return
            msg = await self._receiver.consume(fragment)
            if msg is None:
                continue
            if msg.msgtype == "ERROR":
                self.errors.append(f"server ERROR message: {msg.content}")
            if msg.msgtype == "OK":  # the server has applied one of our patches
                fut = self._acks.pop(msg.header.get("reqid"), None)
                if fut is not None and not fut.done():
                    fut.set_result(time.perf_counter())
            if msg.msgtype != "PATCH-DOC":
                continue
            events = msg.content.get("events", [])
            self.received += events
            _models(events, self.models)
            for event in events:
                if event.get("kind") == "ModelChanged":
                    model = self.models.get(event["model"]["id"])
                    if model is not None:
                        model.setdefault("attributes", {})[event["attr"]] = event["new"]
            for waiter in list(self._waiters):
                pred, fut = waiter
                if not fut.done() and any(pred(e) for e in events):
                    fut.set_result(time.perf_counter())
                    self._waiters.remove(waiter)

    async def close(self) -> None:
        if self._ws is not None:
            self._ws._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass

    # finding models --------------------------------------------------------------------------
    def find(self, name: str | None = None, **attrs) -> str:
        """The id of the first model of type ``name`` (its last dotted part) whose attributes
        hold ``attrs`` (``css_class=...`` matches one of its CSS classes)."""
        css = attrs.pop("css_class", None)
        for mid, model in self.models.items():
            a = model.get("attributes", {})
            if name is not None and model["name"].rsplit(".", 1)[-1] != name:
                continue
            if css is not None and css not in (a.get("css_classes") or []):
                continue
            if all(a.get(k) == v for k, v in attrs.items()):
                return mid
        raise LookupError(f"no model {name} {attrs} css={css}")

    def text(self, model_id: str) -> str:
        return self.models[model_id].get("attributes", {}).get("text", "")

    # actions ---------------------------------------------------------------------------------
    async def _send(self, events: list, ack: asyncio.Future | None = None) -> None:
        """Send ``events`` as one patch; ``ack`` gets the time of the server's OK to it."""
        from bokeh.protocol.messages.patch_doc import patch_doc

        msg = patch_doc(patch_doc.create_header(), {}, {"events": events})
        for event in events:  # the page's own copy changes at once, as BokehJS's does
            if event.get("kind") == "ModelChanged" and event["model"]["id"] in self.models:
                model = self.models[event["model"]["id"]]
                model.setdefault("attributes", {})[event["attr"]] = event["new"]
        if ack is not None:
            self._acks[msg.header["msgid"]] = ack
        await msg.send(self._ws)

    async def act(self, events: list, pred=None) -> float:
        """Send ``events``; seconds until a patch with an event that satisfies ``pred`` (without
        ``pred``: until the server has applied them, its OK)."""
        fut = asyncio.get_running_loop().create_future()
        if pred is not None:
            self._waiters.append((pred, fut))
        t0 = time.perf_counter()
        await self._send(events, ack=None if pred is not None else fut)
        try:
            return await asyncio.wait_for(fut, self.timeout) - t0
        finally:
            if (pred, fut) in self._waiters:
                self._waiters.remove((pred, fut))

    async def click(self, label: str, changes: str) -> float:
        """Click the button ``label``; seconds until model ``changes`` is patched."""
        event = _bokeh_event("button_click", model=self.find("Button", label=label))
        return await self.act([event], _touches(changes))

    async def set_value(self, model_id: str, attr: str, value, changes=None) -> float:
        """Change ``attr`` of a model as a widget does; seconds until the reply patch (one
        that touches ``changes`` if given, else any)."""
        event = {"kind": "ModelChanged", "model": {"id": model_id}, "attr": attr, "new": value}
        pred = _touches(changes) if changes else (lambda e: True)
        return await self.act([event], pred)

    async def show_tab(self, tabs: str, index: int) -> float:
        """Select tab ``index``; seconds until it is drawn: on its first showing, until its
        views arrive (they are built then); later, its views are in the page already and the
        browser shows them by itself: until the server has taken the change (its OK)."""
        first = index not in self._shown
        self._shown.add(index)

        def drawn(e) -> bool:
            return e.get("attr") == "children"

        event = {"kind": "ModelChanged", "model": {"id": tabs}, "attr": "active", "new": index}
        return await self.act([event], drawn if first else None)


def _bokeh_event(name: str, model: str | None = None) -> dict:
    """A UI event as BokehJS sends it (``bokeh.events``), for ``model`` if it has one."""
    values = {"type": "map"}
    if model is not None:
        values["entries"] = [["model", {"id": model}]]
    data = {"type": "event", "name": name, "values": values}
    return {"kind": "MessageSent", "msg_type": "bokeh_event", "msg_data": data}


def _touches(model_id: str):
    def pred(event) -> bool:
        return event.get("model", {}).get("id") == model_id

    return pred


# -- behaviours ---------------------------------------------------------------------------------
class Record:
    """Everything measured, shared by all participants."""

    def __init__(self):
        self.ready: list[float] = []
        self.ready_in_browser: list[float] = []  # of which Chromium's (scripts loaded, drawn)
        self.latency: dict[str, list[float]] = {}
        self.errors: list[str] = []

    def add(self, action: str, seconds: float) -> None:
        self.latency.setdefault(action, []).append(seconds)

    def all_latencies(self) -> list[float]:
        return [x for xs in self.latency.values() for x in xs]


async def ws_participant(url, role, seconds, record, rng, gate, think=THINK_S):
    """Open with the others (``gate``), then train or explore for ``seconds``."""
    p = WsParticipant(url)
    doing = "open"  # named in a failure's record
    try:
        await gate.wait()
        record.ready.append(await p.open())
        until = time.monotonic() + seconds
        status = p.find(css_class="run-status")
        tabs = p.find("Tabs", css_class="main-tabs")
        if role == "train":
            record.add("play", await p.click("▶ Play", status))
        current = 0
        while time.monotonic() < until:
            await asyncio.sleep(rng.uniform(*think))
            if time.monotonic() >= until:
                break
            if role == "train":
                if "finished" in p.text(status):  # keep training for the whole run
                    record.add("play", await p.click("▶ Play", status))
                    continue
                action = "tab"
                choices = LIVE_TABS  # the tabs that follow a run
            else:
                action = rng.choice(("tab", "tab", "preset", "step"))
                choices = range(len(TABS))
            doing = action
            if action == "tab":
                current = rng.choice([k for k in choices if k != current])
                doing = f"tab {TABS[current]}"
                record.add("tab", await p.show_tab(tabs, current))
            elif action == "preset":
                select = p.find(title="Preset")
                info = p.find(css_class="preset-info")
                preset = rng.choice(EXPLORER_PRESETS)
                if p.models[select]["attributes"].get("value") == preset:
                    continue
                doing = f"preset {preset}"
                record.add("preset", await p.set_value(select, "value", preset, info))
            else:
                record.add("step", await p.click("Step ›", status))
    except Exception as exc:  # noqa: BLE001  (a benchmark counts every failure)
        record.errors.append(f"{role} ({doing}): {type(exc).__name__}: {exc}")
    finally:
        record.errors += p.errors
        await p.close()


async def browser_participant(browser, url, role, seconds, record, rng, gate, think=THINK_S):
    """A real Chromium tab: opens the page, then trains or explores by clicking."""
    context = await browser.new_context()
    page = await context.new_page()
    page.on("console", lambda m: m.type == "error" and record.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: record.errors.append(f"page: {e}"))
    # the status line and, below it, the run's message (a queued Step is answered there: "place
    # 2 in the queue, 1 step to train then"), as the websocket participants see the whole pane
    run_status = page.locator(".run-status p")
    status = run_status.first
    try:
        await gate.wait()
        t0 = time.perf_counter()
        await page.goto(url, timeout=60_000)
        await status.wait_for(timeout=60_000)
        record.ready.append(time.perf_counter() - t0)
        record.ready_in_browser.append(record.ready[-1])
        until = time.monotonic() + seconds

        async def click_and_wait(label: str, timeout: float = 30.0) -> float:
            # the status paragraphs are replaced on each change: poll their text, not an element
            before = await run_status.all_inner_texts()
            t = time.perf_counter()
            await page.get_by_role("button", name=label).click()
            while await run_status.all_inner_texts() == before:
                if time.perf_counter() - t > timeout:
                    raise TimeoutError(
                        f"no update {timeout} s after clicking {label!r} (status: {before!r})"
                    )
                await asyncio.sleep(0.02)
            return time.perf_counter() - t

        if role == "train":
            record.add("play", await click_and_wait("▶ Play"))
        current = "Activity"
        while time.monotonic() < until:
            await asyncio.sleep(rng.uniform(*think))
            if time.monotonic() >= until:
                break
            if role == "explore" and rng.random() < 0.3:
                record.add("step", await click_and_wait("Step ›"))
                continue
            current = rng.choice([t for t in TABS if t != current])
            t = time.perf_counter()
            tab = page.locator(".bk-tab").filter(has_text=re.compile(f"^{re.escape(current)}$"))
            await tab.first.click()
            await (
                page.locator(".bk-tab.bk-active")
                .filter(has_text=re.compile(f"^{re.escape(current)}$"))
                .first.wait_for(timeout=30_000)
            )
            record.add("tab", time.perf_counter() - t)
    except Exception as exc:  # noqa: BLE001
        record.errors.append(f"browser {role}: {type(exc).__name__}: {exc}")
    finally:
        await context.close()


def _error_kind(error: str) -> str:
    """What an error was, to count them by kind: a server record's exception (the last line of
    its traceback), else the message's beginning."""
    lines = error.strip().splitlines()
    if len(lines) > 1:
        return "server: " + lines[-1][:120]
    return error[:80]


def _percentiles(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=20, method="inclusive") if len(xs) > 1 else xs * 19
    return {"n": len(xs), "p50": round(q[9], 3), "p95": round(q[18], 3), "max": round(xs[-1], 3)}


async def _sample_rss(server: Server, samples: list, stop: asyncio.Event, every: float = 0.5):
    while not stop.is_set():
        samples.append((time.monotonic(), server.rss_mb()))
        try:
            await asyncio.wait_for(stop.wait(), every)
        except asyncio.TimeoutError:
            pass


async def room(
    server: Server,
    participants: int = 30,
    browsers: int = 3,
    trainers: int = 4,
    seconds: float = 60.0,
    seed: int = 0,
    think: tuple[float, float] = THINK_S,
) -> tuple[Record, list]:
    """All participants open together, ``trainers`` of them train, the rest explore, each for
    ``seconds`` after its page is ready, waiting ``think`` (uniform, seconds) before each
    action; then all close. Returns the record and the RSS samples taken meanwhile."""
    rng = random.Random(seed)
    record, samples, stop = Record(), [], asyncio.Event()
    gate = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(server, samples, stop))
    # one browser trains when there are several trainers, the other browsers explore
    browser_roles = ((["train"] if trainers > 1 else []) + ["explore"] * browsers)[:browsers]
    ws_trainers = trainers - browser_roles.count("train")
    ws_roles = ["train"] * ws_trainers + ["explore"] * (participants - browsers - ws_trainers)
    tasks = []
    pw = browser = None
    try:
        if browsers:
            from playwright.async_api import async_playwright

            pw = await async_playwright().start()
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            )
        for role in ws_roles:
            r = random.Random(rng.random())
            tasks.append(ws_participant(server.url, role, seconds, record, r, gate, think))
        for role in browser_roles:
            r = random.Random(rng.random())
            tasks.append(
                browser_participant(browser, server.url, role, seconds, record, r, gate, think)
            )
        running = [asyncio.create_task(t) for t in tasks]
        gate.set()
        await asyncio.wait_for(asyncio.gather(*running), seconds + 120.0)
    finally:
        if browser is not None:
            await browser.close()
        if pw is not None:
            await pw.stop()
        stop.set()
        await sampler
    return record, samples


async def one_session(server: Server, tour: bool) -> Record:
    """The baseline: one participant opens the page, steps once and leaves; with ``tour``, it
    first shows every tab and chooses each explorer preset, as the room's participants do, so
    that what the server keeps once for good (kernels compiled for a preset, modules a tab
    imports) is in the baseline and what remains after the room is what sessions left."""
    record, p = Record(), WsParticipant(server.url, timeout=120.0)
    try:
        record.ready.append(await p.open())
        if tour:
            tabs = p.find("Tabs", css_class="main-tabs")
            for k in range(1, len(TABS)):
                record.add("tab", await p.show_tab(tabs, k))
            select, info = p.find(title="Preset"), p.find(css_class="preset-info")
            for preset in EXPLORER_PRESETS:
                if p.models[select]["attributes"].get("value") != preset:
                    record.add("preset", await p.set_value(select, "value", preset, info))
                record.add("step", await p.click("Step ›", p.find(css_class="run-status")))
        record.add("step", await p.click("Step ›", p.find(css_class="run-status")))
    except Exception as exc:  # noqa: BLE001
        record.errors.append(f"baseline: {type(exc).__name__}: {exc}")
    finally:
        record.errors += p.errors
        await p.close()
    return record


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def _settle(server: Server, seconds: float, samples: list) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append((time.monotonic(), server.rss_mb()))
        await asyncio.sleep(1.0)


async def benchmark(args) -> dict:
    port = args.port or free_port()
    server = Server(port, warm=not args.no_warm, workers=args.workers)
    result: dict = {"command": " ".join(sys.argv), "cores": os.cpu_count(), "load": {}}
    try:
        server.wait_ready()
        result["load"]["start"] = _load()
        rss = {"idle": round(server.rss_mb(), 1)}
        # one baseline session per serving process (the front hands pages out in turn), so that
        # what each keeps once for good is in the baseline
        base = Record()
        for _ in range(args.workers):
            one = await one_session(server, tour=args.baseline == "tour")
            base.ready += one.ready
            base.errors += one.errors
            for action, xs in one.latency.items():
                base.latency.setdefault(action, []).extend(xs)
        after_one: list = []
        await _settle(server, args.after_one, after_one)
        rss["one_session_baseline"] = round(after_one[-1][1], 1)
        result["baseline_session"] = {
            "kind": args.baseline,
            "ready_s": base.ready,
            "step_s": base.latency.get("step"),
        }
        cpu0, own0 = server.cpu_s(), time.process_time()
        t0 = time.monotonic()
        record, samples = await room(
            server,
            args.participants,
            args.browsers,
            args.trainers,
            args.seconds,
            args.seed,
            tuple(args.think),
        )
        result["load"]["end_of_room"] = _load()
        result["room_wall_s"] = round(time.monotonic() - t0, 1)
        result["server_cpu_s_in_room"] = round(server.cpu_s() - cpu0, 1)
        # this process: the websocket participants and Playwright's driver (Chromium's own
        # processes are not counted); with the server's, what the room cost the 2 cores
        result["benchmark_cpu_s_in_room"] = round(time.process_time() - own0, 1)
        rss["peak_during"] = round(max(r for _, r in samples), 1)
        rss["at_close"] = round(samples[-1][1], 1)
        after: list = []
        await _settle(server, args.after, after)
        rss["after_close"] = round(after[-1][1], 1)
        rss[f"after_close_{int(args.after)}s_vs_baseline"] = round(
            after[-1][1] / rss["one_session_baseline"] - 1, 3
        )
        # the same room again on the same server: memory that sessions leave behind grows
        # with each room; what the server keeps once for good does not
        rss["after_close_by_room"] = [rss["after_close"]]
        for k in range(1, args.rooms):
            again, _ = await room(
                server,
                args.participants,
                args.browsers,
                args.trainers,
                args.seconds,
                args.seed + k,
                tuple(args.think),
            )
            record.errors += [f"room {k + 1}: {e}" for e in again.errors]
            await _settle(server, args.after, after)
            rss["after_close_by_room"].append(round(after[-1][1], 1))
        result["load"]["end"] = _load()
        server_errors, closed_writes = server.errors()
        errors = record.errors + base.errors + server_errors
        result.update(
            workers=args.workers,
            participants=args.participants,
            browsers=args.browsers,
            trainers=args.trainers,
            think_s=args.think,
            page_ready_s=_percentiles(record.ready),
            page_ready_in_chromium_s=sorted(round(x, 2) for x in record.ready_in_browser),
            click_to_update_s=_percentiles(record.all_latencies()),
            by_action={k: _percentiles(v) for k, v in sorted(record.latency.items())},
            errors=len(errors),
            error_kinds=dict(collections.Counter(_error_kind(e) for e in errors).most_common()),
            error_samples=[e[:2000] for e in errors[:10]],
            server_error_samples=[e[-2000:] for e in server_errors[:3]],
            server_writes_to_closed_sockets=closed_writes,
            rss_mb=rss,
        )
        ready, click = result["page_ready_s"], result["click_to_update_s"]
        result["goals"] = {
            "p95_page_ready_under_5s": ready.get("p95", 1e9) < 5.0
            and ready["n"] == args.participants,
            "p95_click_to_update_under_1s": click.get("p95", 1e9) < 1.0,
            "zero_errors": not errors,
            "memory_within_10pct_of_baseline": after[-1][1] <= 1.1 * rss["one_session_baseline"],
        }
    finally:
        server.stop()
    return result


async def open_cost(server: Server, n: int) -> dict:
    """The server's CPU seconds per page opened: ``n`` participants one after another (after
    one untimed), each opening its page, letting its onload work finish, then leaving."""
    cpu = []
    for i in range(n + 1):
        p, c0 = WsParticipant(server.url, timeout=120.0), server.cpu_s()
        try:
            await p.open()
            await asyncio.sleep(1.0)  # the page's document_ready work
            if i:
                cpu.append(server.cpu_s() - c0)
        finally:
            await p.close()
        await asyncio.sleep(0.5)
    return {"opens": n, "server_cpu_s_per_open": _percentiles(cpu), "load": _load()}


async def action_cost(server: Server, n: int) -> dict:
    """The server's CPU seconds per action, one participant at a time (``n`` participants one
    after another): each tab's first showing (its views are built then) and a later one,
    each explorer preset, and Step. What a room asks of the server's one event loop."""
    cpu: dict[str, list] = collections.defaultdict(list)
    for _ in range(n):
        p = WsParticipant(server.url, timeout=120.0)
        try:
            await p.open()
            await asyncio.sleep(1.0)
            status = p.find(css_class="run-status")
            tabs = p.find("Tabs", css_class="main-tabs")
            select, info = p.find(title="Preset"), p.find(css_class="preset-info")
            actions = [(f"first show: {t}", p.show_tab, (tabs, k)) for k, t in enumerate(TABS)]
            actions = actions[1:] + [("show again: Activity", p.show_tab, (tabs, 0))]
            actions += [
                (f"preset {x}", p.set_value, (select, "value", x, info))
                for x in ("lesson-seed", "convergence-ttfs", "convergence")
            ]
            actions += [("Step", p.click, ("Step ›", status))] * 3
            for name, act, act_args in actions:
                c0 = server.cpu_s()
                await act(*act_args)
                await asyncio.sleep(0.5)  # the update's own work, e.g. a Step's snapshot
                cpu[name].append(server.cpu_s() - c0)
        finally:
            await p.close()
        await asyncio.sleep(0.5)
    return {
        "participants": n,
        "server_cpu_s_per_action": {k: _percentiles(v) for k, v in cpu.items()},
        "load": _load(),
    }


def _static_urls(page_url: str) -> list[str]:
    """The scripts and stylesheets a served page makes the browser load."""
    with urllib.request.urlopen(page_url, timeout=120) as r:
        page = r.read().decode("utf-8")
    base = page_url.rsplit("/", 1)[0] + "/"
    return sorted({base + u for u in re.findall(r'(?:src|href)="(static/[^"]+)"', page)})


def static_cost(server: Server, n: int) -> dict:
    """What ``n`` browsers with an empty cache cost the server for a page's scripts and
    stylesheets (gzip accepted, as every browser does): the bytes sent and the server's CPU
    seconds per page (after one untimed page)."""
    urls = _static_urls(server.url)
    sent, cpu = [], []
    for i in range(n + 1):
        c0, size = server.cpu_s(), 0
        for u in urls:
            request = urllib.request.Request(u, headers={"Accept-Encoding": "gzip, deflate, br"})
            with urllib.request.urlopen(request, timeout=120) as r:
                size += len(r.read())  # as sent: compressed when the server compressed it
        if i:
            sent.append(size / 1e6)
            cpu.append(server.cpu_s() - c0)
    return {
        "pages": n,
        "files_per_page": len(urls),
        "mb_sent_per_page": _percentiles(sent),
        "server_cpu_s_per_page": _percentiles(cpu),
        "load": _load(),
    }


async def _cost_run(args) -> dict:
    server = Server(args.port or free_port(), warm=not args.no_warm, workers=args.workers)
    try:
        server.wait_ready()
        if args.action_cost:
            return await action_cost(server, args.action_cost)
        if args.static_cost:
            return static_cost(server, args.static_cost)
        return await open_cost(server, args.open_cost)
    finally:
        server.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=30, help="everyone, browsers included")
    parser.add_argument("--browsers", type=int, default=3, help="of which real Chromium tabs")
    parser.add_argument("--trainers", type=int, default=4, help="of which press Play")
    parser.add_argument("--seconds", type=float, default=60.0, help="activity after opening")
    parser.add_argument("--after", type=float, default=120.0, help="memory watch after closing")
    parser.add_argument(
        "--after-one", type=float, default=80.0, help="wait after the one-session baseline"
    )
    parser.add_argument(
        "--baseline",
        choices=("tour", "step"),
        default="tour",
        help="the one-session baseline: every tab, preset and Step first (tour), or one Step",
    )
    parser.add_argument(
        "--rooms", type=int, default=1, help="rooms in turn on the same server (memory per room)"
    )
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=list(THINK_S),
        metavar=("LOW", "HIGH"),
        help="seconds between one participant's actions, drawn uniformly (default 0.5 2)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="serving processes (batscope serve --workers)"
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-warm", action="store_true", help="serve without --setup warm-up")
    parser.add_argument(
        "--open-cost",
        type=int,
        default=0,
        metavar="N",
        help="instead of a room: the server's CPU seconds per page, N pages one after another",
    )
    parser.add_argument(
        "--action-cost",
        type=int,
        default=0,
        metavar="N",
        help="instead of a room: the server's CPU seconds per action, N participants in turn",
    )
    parser.add_argument(
        "--static-cost",
        type=int,
        default=0,
        metavar="N",
        help="instead of a room: bytes and server CPU seconds of a page's scripts, N browsers",
    )
    args = parser.parse_args(argv)
    if args.open_cost or args.action_cost or args.static_cost:
        print(json.dumps(asyncio.run(_cost_run(args)), indent=1))
        return 0
    if args.rooms < 1:
        parser.error("need --rooms >= 1")
    if not 0 <= args.think[0] <= args.think[1]:
        parser.error("need 0 <= LOW <= HIGH for --think")
    if not 1 <= args.trainers <= args.participants or not 0 <= args.browsers <= args.participants:
        parser.error("need 1 <= trainers <= participants and 0 <= browsers <= participants")
    result = asyncio.run(benchmark(args))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
