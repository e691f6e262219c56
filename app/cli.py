"""``batscope serve``: run the app with ``panel serve`` and sensible multi-user defaults;
``batscope train``: see ``batscope.training.cli``; ``batscope sweep``: see
``batscope.training.sweep_cli``; ``batscope report``: see ``batscope.training.report``;
``batscope export-nir``: see ``nir_command``."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from batscope.training.cli import add_train_parser, train_command
from batscope.training.report import add_report_parser, report_command
from batscope.training.sweep_cli import add_sweep_parser, sweep_command

from .nir_command import add_export_nir_parser, export_nir_command

HERE = Path(__file__).resolve().parent
SESSION_FLAGS = [
    "--liveness",
    "--unused-session-lifetime",
    "60000",
    "--check-unused-sessions",
    "10000",
]


def serve_command(
    port: int = 5006,
    show: bool = False,
    address: str | None = None,
    allow_websocket_origin: list[str] | None = None,
    dev: bool = False,
    warm: bool = True,
) -> list[str]:
    """The ``panel serve`` command line for ``app/main.py``."""
    cmd = [
        sys.executable,
        "-m",
        "panel",
        "serve",
        str(HERE / "main.py"),
        "--port",
        str(port),
        *SESSION_FLAGS,
    ]
    if warm:
        cmd += ["--setup", str(HERE / "warm.py")]
    if show:
        cmd.append("--show")
    if address:
        cmd += ["--address", address]
    for origin in allow_websocket_origin or ():
        cmd += ["--allow-websocket-origin", origin]
    if dev:
        cmd.append("--dev")
    return cmd


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="batscope", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the interactive app")
    serve.add_argument("--port", type=int, default=5006, help="port (0 = any free port)")
    serve.add_argument("--show", action="store_true", help="open a browser tab")
    serve.add_argument("--address", default=None, help="address to listen on")
    serve.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=[],
        help="host[:port] allowed to connect (repeatable), for remote use",
    )
    serve.add_argument("--dev", action="store_true", help="reload on code changes")
    serve.add_argument(
        "--no-warm", action="store_true", help="skip compiling the kernels at start-up"
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
    cmd = serve_command(
        args.port,
        args.show,
        args.address,
        args.allow_websocket_origin,
        args.dev,
        warm=not args.no_warm,
    )
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
