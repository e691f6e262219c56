"""``batscope serve``: run the app with ``panel serve`` and sensible multi-user defaults;
``batscope train``: see ``batscope.training.cli``; ``batscope sweep``: see
``batscope.training.sweep_cli``; ``batscope report``: see ``batscope.training.report``;
``batscope export-nir``: see ``nir_command``.

By default the server listens on this machine only (127.0.0.1). ``--share`` serves a room: it
listens on every interface, allows the page's websocket from the machine's LAN address and
names, and prints the URL to share. ``--room`` does the same and adds the instructor's page
(``app/instructor.py`` at ``/instructor``): it prints the participants' URL and the instructor's,
which carries a token made for this server (``room.new_token``), handed to the server in its
environment (never on its command line) and checked by ``room_gate``.
``--workers N`` serves the same pages from N processes behind one address (``app/front.py``,
``app/workers.py``), for a room larger than one process's event loop can answer in time.
``--dask-scheduler ADDRESS`` lets participants run their sweeps on that Dask cluster (it sets
``BATSCOPE_DASK_SCHEDULER`` for the server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import webbrowser
from pathlib import Path

from batscope.engine.process_locks import forget_process
from batscope.training.cli import add_train_parser, train_command
from batscope.training.report import add_report_parser, report_command
from batscope.training.serversettings import DATA_DIR_ENV, DOWNLOAD_ENV, RUNS_DIR_ENV
from batscope.training.sweep_cli import add_sweep_parser, sweep_command
from batscope.training.sweep_remote import SCHEDULER_ENV

from .front import Front, Router, listen
from .lesson_catalog import ENV as LESSONS_ENV
from .lesson_catalog import read_lessons
from .nir_command import add_export_nir_parser, export_nir_command
from .room import TOKEN_ENV, new_token
from .workers import WorkerPool, check_workers, free_port, worker_env

HERE = Path(__file__).resolve().parent
LOCAL = "127.0.0.1"
EVERYWHERE = "0.0.0.0"
SESSION_FLAGS = [
    "--liveness",
    "--unused-session-lifetime",
    "60000",
    "--check-unused-sessions",
    "10000",
]


def lan_address() -> str:
    """This machine's address on its local network (the interface of the default route).

    Connecting a UDP socket sends no packet: it only asks the kernel which interface it would
    use. Falls back to the address the host name resolves to, then to 127.0.0.1.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return s.getsockname()[0]
        except OSError:
            pass
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return LOCAL


def websocket_origins(
    port: int, address: str | None = None, share: bool = False, extra=()
) -> list[str]:
    """The ``host:port`` origins whose pages may open the app's websocket.

    Always this machine's own names (localhost, 127.0.0.1); a specific ``address`` adds itself;
    ``share`` adds the LAN address and the host names a participant may type.
    """
    hosts = ["localhost", LOCAL]
    if address and address not in (EVERYWHERE, "", "::"):
        hosts.append(address)
    if share:
        hosts += [lan_address(), socket.gethostname(), socket.getfqdn()]
    origins = [f"{h}:{port}" for h in hosts] + list(extra)
    return list(dict.fromkeys(origins))


def server_env(data_dir=None, allow_download: bool = False, runs=None, base=None) -> dict:
    """The server's environment: what sessions may use (training/serversettings.py)."""
    env = dict(os.environ if base is None else base)
    for name, value in ((DATA_DIR_ENV, data_dir), (RUNS_DIR_ENV, runs)):
        if value is not None:
            env[name] = str(Path(value).expanduser().resolve())
    if allow_download:
        env[DOWNLOAD_ENV] = "1"
    return env


def share_url(port: int) -> str:
    return f"http://{lan_address()}:{port}/main"


def instructor_url(port: int, token: str) -> str:
    return f"http://{lan_address()}:{port}/instructor?token={token}"


def serve_command(
    port: int = 5006,
    show: bool = False,
    address: str | None = None,
    allow_websocket_origin: list[str] | None = None,
    dev: bool = False,
    warm: bool = True,
    share: bool = False,
    room: bool = False,
) -> list[str]:
    """The ``panel serve`` command line for ``app/main.py`` (``room``: and ``app/instructor.py``
    behind the room's gate; a room is shared).

    Listens on 127.0.0.1 unless ``address`` is given (``share``: on every interface). A
    ``port`` of 0 is resolved to a free port here so the websocket origins can name it.
    """
    share = share or room
    address = listen_address(address, share)
    if port == 0:
        port = free_port(LOCAL if address == LOCAL else "")
    cmd = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(HERE / "main.py"),
        *([str(HERE / "instructor.py"), "--plugins", "batscope.app.room_gate"] if room else []),
        # a closing page's connection is dropped by its own handler (app/keep_alive.py)
        "--plugins",
        "batscope.app.keep_alive",
        # scripts and stylesheets are sent gzip-compressed (app/static_gzip.py)
        "--plugins",
        "batscope.app.static_gzip",
        "--address",
        address,
        "--port",
        str(port),
        *SESSION_FLAGS,
    ]
    for origin in websocket_origins(port, address, share, allow_websocket_origin or ()):
        cmd += ["--allow-websocket-origin", origin]
    if warm:
        cmd += ["--setup", str(HERE / "warm.py")]
    if show and not share:  # shared: the LAN link is opened instead (main)
        cmd.append("--show")
    if dev:
        cmd.append("--dev")
    return cmd


def listen_address(address: str | None, share: bool) -> str:
    """Where the server listens: ``address`` if given, else every interface for a shared room
    and this machine only otherwise."""
    if address is not None:
        return address
    return EVERYWHERE if share else LOCAL


def serve_env(dev: bool = False, environ=None) -> dict:
    """The server's environment. Bokeh checks every new session's document model by model
    (about 40 ms of the event loop per opening): a development aid, kept for ``--dev`` and
    whenever ``BOKEH_VALIDATE_DOC`` is set.

    Python's small objects are allocated from the system's ``malloc`` (``PYTHONMALLOC``, unless
    set): Python's own allocator keeps a 1 MiB arena as long as one object in it lives, and a
    closed room's sessions left some 70 MB of empty pools that way (5 sessions, in-process;
    +23 % against +3 % with ``malloc``, whose free pages ``session.release_memory`` hands
    back). It costs each opening a few per cent.
    """
    env = dict(os.environ if environ is None else environ)
    if not dev:
        env.setdefault("BOKEH_VALIDATE_DOC", "false")
    env.setdefault("PYTHONMALLOC", "malloc")
    return env


def dask_scheduler_address(text: str) -> str:
    """``--dask-scheduler``: the address the server gets as ``BATSCOPE_DASK_SCHEDULER``."""
    address = text.strip()
    if not address or any(c.isspace() for c in address):
        raise ValueError(f"--dask-scheduler: {text!r} is not a scheduler address")
    return address


def _open_when_listening(proc, url: str, port: int, timeout: float = 300.0) -> None:
    """Open ``url`` in a browser once something accepts on ``port`` (the server warms first)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            with socket.create_connection((LOCAL, port), timeout=1):
                webbrowser.open(url)
                return
        except OSError:
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batscope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the interactive app")
    serve.add_argument("--port", type=int, default=5006, help="port (0 = any free port)")
    serve.add_argument("--show", action="store_true", help="open a browser tab")
    serve.add_argument(
        "--share",
        action="store_true",
        help="serve a room: listen on every interface and print the URL to share",
    )
    serve.add_argument(
        "--room",
        action="store_true",
        help="run a workshop: --share, plus an instructor page (its URL carries a secret token)",
    )
    serve.add_argument(
        "--address", default=None, help="address to listen on (default 127.0.0.1, this machine)"
    )
    serve.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=[],
        help="another host[:port] whose pages may connect (repeatable), e.g. behind a proxy",
    )
    serve.add_argument(
        "--lessons",
        metavar="DIR",
        default=None,
        help="add the lessons (*.json) of DIR to the shipped ones; a bad file stops the server",
    )
    serve.add_argument("--dev", action="store_true", help="reload on code changes")
    serve.add_argument(
        "--data-dir", default=None, help="folder of official dataset files sessions may train on"
    )
    serve.add_argument(
        "--allow-download",
        action="store_true",
        help="let sessions download a full dataset (checked against pinned hashes); off by default",
    )
    serve.add_argument(
        "--runs", default=None, help="folder of run folders (batscope train --out) to open"
    )
    serve.add_argument(
        "--dask-scheduler",
        metavar="ADDRESS",
        help="a Dask scheduler (tcp://host:8786) participants may run their sweeps on",
    )
    serve.add_argument(
        "--no-warm", action="store_true", help="skip compiling the kernels at start-up"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes behind one address (a large room on a machine with "
        "several cores); they share the limits on trainings at once and memory",
    )
    add_train_parser(sub)
    add_report_parser(sub)
    add_export_nir_parser(sub)
    add_sweep_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "train":
        return train_command(args)
    if args.command == "report":
        return report_command(args)
    if args.command == "sweep":
        return sweep_command(args)
    if args.command == "export-nir":
        return export_nir_command(args)
    env = server_env(args.data_dir, args.allow_download, args.runs)
    if args.lessons:  # checked here, before the server starts (docs/lessons.md §4)
        lessons, errors = read_lessons(args.lessons)
        for exc in errors:
            print(f"batscope: lesson refused: {exc}", file=sys.stderr)
        if errors:
            return 2
        env[LESSONS_ENV] = str(Path(args.lessons).resolve())
        print(f"batscope: {len(lessons)} lessons offered", flush=True)
    if args.dask_scheduler is not None:
        try:
            env[SCHEDULER_ENV] = dask_scheduler_address(args.dask_scheduler)
        except ValueError as exc:
            parser.error(str(exc))
    if args.workers != 1:
        if args.room or args.dev:
            parser.error(
                "--workers serves from several processes: --room needs one (the instructor's "
                "page sees the participants of its own process) and so does --dev"
            )
        try:
            check_workers(args.workers)
        except ValueError as exc:
            parser.error(str(exc))
        return serve_workers(args, serve_env(False, env))
    cmd = serve_command(
        args.port,
        args.show,
        args.address,
        args.allow_websocket_origin,
        args.dev,
        warm=not args.no_warm,
        share=args.share,
        room=args.room,
    )
    port = int(cmd[cmd.index("--port") + 1])
    if args.room:
        token = new_token()
        env[TOKEN_ENV] = token
        url = instructor_url(port, token)  # --show opens the instructor's page
        print(f"participants: {share_url(port)}", flush=True)
        print(f"instructor: {url}", flush=True)
        print(
            "batscope: keep the instructor link to yourself: its token opens the room", flush=True
        )
    elif args.share:
        url = share_url(port)
        print(f"batscope: share this link with the room: {url}", flush=True)
    proc = subprocess.Popen(cmd, env=serve_env(args.dev, env))
    # `batscope serve` stands for the server: a stop asked of it is passed on (an orphaned
    # server would keep the port and its sessions)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signum))
    try:
        if (args.share or args.room) and args.show:
            _open_when_listening(proc, url, port)
        return proc.wait()
    except KeyboardInterrupt:  # the server got the same Ctrl-C: let it close its sessions
        proc.terminate()
        proc.wait(30)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_workers(args, env: dict) -> int:
    """``batscope serve --workers N``: N serving processes on 127.0.0.1 that share one server's
    limits through a private folder, and the front (this process) where the room connects."""
    address = listen_address(args.address, args.share)
    port = args.port or free_port(LOCAL if address == LOCAL else "")
    origins = websocket_origins(port, address, args.share, args.allow_websocket_origin)

    def command(worker_port: int) -> list[str]:
        return serve_command(
            worker_port, address=LOCAL, allow_websocket_origin=origins, warm=not args.no_warm
        )

    def stopped(signum, frame):  # while the processes start: stop them with this one
        raise SystemExit(128 + signum)

    folder = tempfile.TemporaryDirectory(prefix="batscope-serve-")  # mode 700: this user only
    pool = WorkerPool(command, [worker_env(env, folder.name)] * args.workers)
    print(f"batscope: starting {args.workers} serving processes", flush=True)
    previous = signal.signal(signal.SIGTERM, stopped)
    try:
        pool.start()
        pool.wait_listening()
        return asyncio.run(_front(pool, port, address, origins, args, folder.name))
    except (RuntimeError, TimeoutError) as exc:
        print(f"batscope: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        pool.stop()
        folder.cleanup()
        signal.signal(signal.SIGTERM, previous)


async def _front(
    pool: WorkerPool, port: int, address: str, origins: list[str], args, folder: str
) -> int:
    router = Router(len(pool.workers))

    def lost(index: int, pid: int) -> None:  # a serving process ended: nothing of it remains
        router.forget(index)
        forget_process(Path(folder), pid)

    server = listen(Front(router, pool.port_of, origins), port, address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host = LOCAL if address in (LOCAL, EVERYWHERE, "", "::") else address
    url = f"http://{host}:{port}/main"
    print(f"batscope: {len(pool.workers)} serving processes behind {url}", flush=True)
    if args.share:
        url = share_url(port)
        print(f"batscope: share this link with the room: {url}", flush=True)
    if args.show:
        webbrowser.open(url)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 2.0)
            except TimeoutError:
                pool.check(lost)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
