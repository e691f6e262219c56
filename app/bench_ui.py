"""How much does the live UI cost a training run?  ``python -m batscope.app.bench_ui``

For each setup, measures ``Trainer.step()`` throughput (a) headless, in a plain loop, and (b)
inside the app: the TrainingController's worker thread publishing snapshots, while this thread
plays the session's role and calls ``LiveSession._tick()`` at 4 Hz, with every view rendered
into a Bokeh document (so stream updates reach real Bokeh models, as in a served session).
Also (c): the worker and the tick without any view (the cost of snapshots alone). Reports
medians over alternating rounds (steps/s), the overheads, and the achieved tick rate. Not a
test: numbers depend on the machine and on its load. ``--tabs`` picks the views updated (as if
all were shown); the default is the Activity and Learning tabs.

``--served`` instead serves the app in this process, opens it in headless Chromium on the
given tab, presses Play and counts steps: the whole path (serialization, websocket, the page's
rendering on the same cores) against the headless loop, with Chromium's CPU use.

Measured 2026-11-29 on the 2-core development VM (no GPU, software rendering), shared with
other jobs: repeated runs differ by about 10 points, so the tick duration is the steadier figure.

  python -m batscope.app.bench_ui --seconds 6 --rounds 5      (Activity + Learning; three runs)
  setup           headless  snapshots  overhead   with UI  overhead  ticks/s  tick ms
  convergence       1421.5     1332.1      6.3%    1406.6      1.0%     4.00      3.6
  mnist-small         71.6       71.7     -0.1%      75.0     -4.7%     4.00      3.8
  convergence       1299.9     1249.1      3.9%    1147.2     11.7%     4.00      4.5
  mnist-small         74.1       69.8      5.8%      60.0     19.1%     4.00      5.3
  convergence       1345.8     1370.5     -1.8%    1285.3      4.5%     4.00      4.2
  mnist-small         83.8       84.0     -0.2%      82.3      1.8%     4.00      3.3

  python -m batscope.app.bench_ui --seconds 6 --rounds 5 --tabs activity
  convergence       1479.6     1431.0      3.3%    1532.1     -3.5%     4.00      2.3
  mnist-small         82.8       81.0      2.2%      75.5      8.8%     4.00      2.2

Before the live views drew on plain Bokeh (commit 5601dbd and earlier), same machine: a tick
took about 35 ms (Activity) and 100-150 ms (Activity + Learning), and the overheads were 6.9 % /
25 % (convergence) and 21 % / 52 % (mnist-small).

  python -m batscope.app.bench_ui --served --seconds 8 --rounds 2 --tabs activity learning
      sparsity code
  setup         tab         headless    served  overhead  ticks/s  browser (cores)
  convergence   activity      1015.1    1084.1     -6.8%     3.99     0.16
  convergence   learning      1151.1    1248.8     -8.5%     3.99     0.45
  convergence   sparsity      1248.0    1175.3      5.8%     3.98     0.23
  convergence   code          1400.6    1302.2      7.0%     3.93     0.12
  mnist-small   activity        75.7      51.7     31.7%     3.93     0.33
  mnist-small   learning        70.5      42.9     39.1%     3.87     0.74

The server side of a tick now costs 2-5 ms of GIL time every 250 ms. What remains in the served
figures for mnist-small is the browser: Chromium draws the changing plots in software on the
same two cores that the training's two Numba threads use (0.3-0.7 cores on the Activity and
Learning tabs; 0.12 with no live plot shown). On a machine with cores to spare, or a browser on
another machine, that cost leaves the training alone.
"""

from __future__ import annotations

import argparse
import faulthandler
import math
import os
import statistics
import time
from functools import partial
from pathlib import Path

from batscope.training.trainer import Trainer
from bokeh.document import Document
from bokeh.protocol import Protocol

from .presets import load_preset

SETUPS = {
    "convergence": ("convergence", {}),
    "mnist-small": (
        "mnist-multi",
        {"epochs": 1000, "n_train": 500, "batch_size": 50},
        [(100, 0.2, 30), (10, 1.3, 30)],
    ),
}


def _config(name: str) -> dict:
    preset, training, *layers = SETUPS[name]
    cfg = load_preset(preset).config
    cfg = {**cfg, "training": {**cfg["training"], **training, "epochs": 100_000}}
    if layers:
        net = [dict(cfg["network"]["layers"][0]) for _ in layers[0]]
        for d, (n, theta, s) in zip(net, layers[0], strict=True):
            d.update(size=n, theta=theta, reset=theta, n_max=s)
        cfg["network"] = {"layers": net}
    return cfg


def headless(config: dict, seconds: float) -> float:
    trainer = Trainer(config)
    trainer.step()  # compile / warm caches outside the timed part
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        trainer.step()
        n += 1
    return n / (time.perf_counter() - t0)


TABS = {  # the live views of each tab (app/factory.py)
    "activity": ("raster", "membrane"),
    "learning": ("metrics", "errorflow", "weights"),
    "sparsity": ("sparsity", "latency"),
    "code": (),  # no live plot
}


def with_ui(
    config: dict,
    seconds: float,
    period_s: float = 0.25,
    views: bool = True,
    tabs=("activity", "learning"),
):
    """Steps/s of a TrainingRun while a 4 Hz tick updates the views of ``tabs`` as if they were
    all shown (or, with ``views=False``, only drains the snapshots); returns (steps/s, ticks/s,
    median tick duration in ms, serialization of the changes included)."""
    import panel as pn
    from batscope.training.state import apply_run_config

    from .factory import create_app

    pn.extension()
    app = create_app()
    apply_run_config(config, app.network, app.training)
    doc = Document()
    for view in (*(app.view(n) for names in TABS.values() for n in names), app.controls):
        view.__panel__().get_root(doc)
    # what a server does with each change: serialize it into a PATCH-DOC message
    protocol = Protocol()
    doc.on_change(lambda event: protocol.create("PATCH-DOC", [event]))
    live = {name for tab in tabs for name in TABS[tab]}
    for name, gate in app.gates.items():
        gate._visible = partial(bool, name in live)
    ctrl, session = app.controller, app.session
    if not views:
        session._feeds = [(ctrl, [])]
    ctrl.param.trigger("start")
    while ctrl.status != "running" or ctrl.steps < 2:  # the first published snapshot
        session._tick()
        time.sleep(0.05)
    start_steps, t0 = ctrl.run.trainer.step_count, time.perf_counter()
    durations, next_tick = [], t0
    while time.perf_counter() - t0 < seconds:
        start = time.perf_counter()
        with pn.io.hold(doc):  # as the served session's tick: one combined patch
            session._tick()
        durations.append(time.perf_counter() - start)
        next_tick += period_s
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    elapsed = time.perf_counter() - t0
    steps = ctrl.run.trainer.step_count - start_steps
    ctrl.shutdown()
    return steps / elapsed, len(durations) / elapsed, 1e3 * statistics.median(durations)


TAB_TITLES = {
    "activity": "Activity",
    "learning": "Learning",
    "sparsity": "Sparsity & latency",
    "code": "Code & export",  # no live plot: the status line and the progress bar only
}


def _chromium_cpu_s() -> float:
    """CPU seconds used so far by the processes named chrom* (Linux ``/proc``; NaN elsewhere)."""
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended
            continue
        name, fields = text[text.index("(") + 1 : text.rindex(")")], text.rsplit(")", 1)[1].split()
        if name.startswith("chrom"):
            found = True
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total if found else math.nan


def served(config: dict, seconds: float, tab: str = "activity", chromium: str = "") -> tuple:
    """Steps/s of a run started with the Play button of the app served in this process and
    shown on ``tab`` in headless Chromium (the page's rendering shares this machine's cores, as
    on a laptop); returns (steps/s, ticks/s, Chromium's CPU use in cores). Needs
    ``pip install -e .[test]`` and a Chromium."""
    import shutil
    import socket

    import panel as pn
    from batscope.training.state import apply_run_config
    from playwright.sync_api import sync_playwright

    from .factory import create_app

    apps = []

    def make():
        app = create_app()
        apply_run_config(config, app.network, app.training)
        apps.append(app)
        return app.template

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = pn.serve(make, port=port, threaded=True, show=False)
    executable = chromium or shutil.which("chromium") or "/usr/bin/chromium"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://localhost:{port}")
            page.locator(".run-status p").first.wait_for(timeout=60_000)
            app = apps[-1]
            if tab != "activity":
                page.locator(".bk-tab").filter(has_text=TAB_TITLES[tab]).first.click()
            page.get_by_role("button", name="▶ Play").click()
            ctrl = app.controller
            deadline = time.monotonic() + 120
            while ctrl.status != "running" or ctrl.steps < 2:
                if time.monotonic() > deadline:
                    faulthandler.dump_traceback(all_threads=True)  # where the run is stuck
                    raise TimeoutError(f"the run did not start (status {ctrl.status!r})")
                time.sleep(0.05)
            time.sleep(1.0)  # the views' first paint
            steps0, ticks0, t0 = ctrl.run.trainer.step_count, app.session.ticks, time.perf_counter()
            cpu0 = _chromium_cpu_s()
            time.sleep(seconds)
            elapsed = time.perf_counter() - t0
            browser_cores = (_chromium_cpu_s() - cpu0) / elapsed
            steps = ctrl.run.trainer.step_count - steps0
            ticks = app.session.ticks - ticks0
            ctrl.shutdown()
            browser.close()
    finally:
        for app in apps:
            app.controller.shutdown()
        server.stop()
    return steps / elapsed, ticks / elapsed, browser_cores


def _served_table(args) -> None:
    print(
        f"{'setup':<14}{'tab':<10}{'headless':>10}{'served':>10}{'overhead':>10}{'ticks/s':>9}"
        f"{'browser':>9}   (steps/s; the browser's CPU use in cores)"
    )
    for name in args.setups:
        cfg = _config(name)
        for tab in args.tabs:
            runs = [
                (headless(cfg, args.seconds), *served(cfg, args.seconds, tab))
                for _ in range(args.rounds)
            ]
            base, ui, rate, cores = (statistics.median(c) for c in zip(*runs, strict=True))
            print(
                f"{name:<14}{tab:<10}{base:>10.1f}{ui:>10.1f}{100 * (1 - ui / base):>9.1f}%"
                f"{rate:>9.2f}{cores:>9.2f}",
                flush=True,
            )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--setups", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternate the three measurements this many times (medians)",
    )
    parser.add_argument(
        "--tabs",
        nargs="+",
        default=["activity", "learning"],
        choices=list(TABS),
        help="tabs whose views are updated (as if all were shown; --served: one at a time)",
    )
    parser.add_argument(
        "--served",
        action="store_true",
        help="serve the app and watch it in headless Chromium instead of ticking in-process",
    )
    args = parser.parse_args(argv)
    if args.served:
        _served_table(args)
        return 0
    print(
        f"{'setup':<14}{'headless':>10}{'snapshots':>11}{'overhead':>10}{'with UI':>10}"
        f"{'overhead':>10}{'ticks/s':>9}{'tick ms':>9}   (steps/s)"
    )
    for name in args.setups:
        cfg = _config(name)
        runs = [
            (
                headless(cfg, args.seconds),
                with_ui(cfg, args.seconds, views=False)[0],
                *with_ui(cfg, args.seconds, tabs=args.tabs),
            )
            for _ in range(args.rounds)
        ]
        base, snaps, ui, rate, tick = (statistics.median(col) for col in zip(*runs, strict=True))
        print(
            f"{name:<14}{base:>10.1f}{snaps:>11.1f}{100 * (1 - snaps / base):>9.1f}%"
            f"{ui:>10.1f}{100 * (1 - ui / base):>9.1f}%{rate:>9.2f}{tick:>9.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
