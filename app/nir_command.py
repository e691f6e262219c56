"""``batscope export-nir MODEL OUT.nir``: write a saved network as a NIR graph (engine/nir.py).

``MODEL`` is a network saved by ``Network.save`` (``<stem>``, ``<stem>.npz`` or ``<stem>.json``)
or a model zip downloaded from the app's Code & export tab. The file is written atomically with
``nir.write``; a network NIR cannot represent (Δθ ≠ θ) is refused and nothing is written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from batscope.engine.network import Network
from batscope.engine.nir import write_nir
from batscope.training.files import read_model


def load_model(path) -> Network:
    """The network saved at ``path`` (engine save files or an app model zip, checked as the app
    checks an upload)."""
    p = Path(path)
    if p.suffix == ".zip":
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such model zip")
        return read_model(p.read_bytes()).build()
    return Network.load(p)


def export_nir(model, out) -> Path:
    """Write the NIR graph of the network saved at ``model`` to ``out``; returns ``out``."""
    return write_nir(load_model(model), out)


def add_export_nir_parser(sub) -> None:
    """Register ``export-nir`` on the ``batscope`` command's subparsers."""
    cmd = sub.add_parser("export-nir", help="write a saved network as a NIR graph (.nir)")
    cmd.add_argument("model", help="saved network (<stem>, .npz or .json) or an app model .zip")
    cmd.add_argument("out", help="the .nir file to write")


def export_nir_command(args) -> int:
    """Run ``export-nir``: 0 on success, 1 with a message on stderr otherwise."""
    try:
        out = export_nir(args.model, args.out)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        print(f"batscope export-nir: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {out}")
    return 0
