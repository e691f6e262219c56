"""How much does the live UI cost a training run?  ``python -m batscope.app.bench_ui``

For each setup, measures ``Trainer.step()`` throughput (a) headless, in a plain loop, and (b)
inside the app: the TrainingController's worker thread publishing snapshots, while this thread
plays the session's role and calls ``LiveSession._tick()`` at 4 Hz, with every view rendered
into a Bokeh document (so stream updates reach real Bokeh models, as in a served session).
Also (c): the worker and the tick without any view (the cost of snapshots alone). Reports
medians over alternating rounds (steps/s), the overheads, and the achieved tick rate. Not a
test: numbers depend on the machine and on its load. ``--tabs`` picks the views updated (as if
all were shown); the default is the Activity and Learning tabs.

Measured 2026-11-29 on the 2-core development VM, shared with other jobs (repeated runs differ
by about 5 points), steps/s, medians:

  python -m batscope.app.bench_ui --seconds 6 --rounds 3                 (Activity + Learning)
  setup           headless  snapshots  overhead   with UI  overhead  ticks/s
  convergence       1210.7     1221.5     -0.9%     910.0     24.8%     4.00
  mnist-small         71.5       68.5      4.1%      34.5     51.7%     4.00

  python -m batscope.app.bench_ui --seconds 6 --rounds 3 --tabs activity
  convergence       1235.8     1162.1      6.0%    1150.6      6.9%     4.00
  mnist-small         72.6       65.7      9.6%      57.0     21.5%     4.00

The views before commit 0c234d7, same machine (``--seconds 5 --rounds 2``): Activity + Learning
65.6 % (convergence) and 72.0 % (mnist-small); Activity 15.3 % and 40.9 % (3.8 ticks/s).

The overhead follows the GIL time of a tick (now about 35 ms with the Activity views and
100-130 ms with Activity and Learning, mnist-small): the worker needs the GIL between its Numba
kernels and waits for the tick each time. The 10 % goal needs ticks under about 25 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

from batscope.engine.trainer import Trainer
from bokeh.document import Document

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
}


def with_ui(
    config: dict,
    seconds: float,
    period_s: float = 0.25,
    views: bool = True,
    tabs=("activity", "learning"),
):
    """Steps/s of a TrainingRun while a 4 Hz tick updates the views of ``tabs`` as if they were
    all shown (or, with ``views=False``, only drains the snapshots); returns (steps/s, ticks/s)."""
    import holoviews as hv
    import panel as pn

    from .factory import create_app
    from .state import apply_run_config

    hv.extension("bokeh")
    pn.extension()
    app = create_app()
    apply_run_config(config, app.network, app.training)
    doc = Document()
    for view in (*app.views.values(), app.controls):
        view.__panel__().get_root(doc)
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
    ticks, next_tick = 0, t0
    while time.perf_counter() - t0 < seconds:
        session._tick()
        ticks += 1
        next_tick += period_s
        time.sleep(max(0.0, next_tick - time.perf_counter()))
    elapsed = time.perf_counter() - t0
    steps = ctrl.run.trainer.step_count - start_steps
    ctrl.shutdown()
    return steps / elapsed, ticks / elapsed


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
        help="tabs whose views are updated (as if all were shown)",
    )
    args = parser.parse_args(argv)
    print(
        f"{'setup':<14}{'headless':>10}{'snapshots':>11}{'overhead':>10}{'with UI':>10}"
        f"{'overhead':>10}{'ticks/s':>9}   (steps/s)"
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
        base, snaps, ui, rate = (statistics.median(col) for col in zip(*runs, strict=True))
        print(
            f"{name:<14}{base:>10.1f}{snaps:>11.1f}{100 * (1 - snaps / base):>9.1f}%"
            f"{ui:>10.1f}{100 * (1 - ui / base):>9.1f}%{rate:>9.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
