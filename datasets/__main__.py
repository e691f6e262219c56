"""Command line: ``python -m batscope.datasets {list,fetch,check} ...``.

``fetch NAME`` downloads both splits into the cache (``$BATSCOPE_DATA``); ``check NAME --data-dir
DIR`` verifies and loads a folder of files without touching the network.
"""

from __future__ import annotations

import argparse
import sys

from .loaders import cache_dir, load
from .registry import DATASETS, get_spec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m batscope.datasets", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="known datasets and the cache folder")
    for cmd in ("fetch", "check"):
        p = sub.add_parser(cmd, help=f"{cmd} both splits of a dataset")
        p.add_argument("name")
        p.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print(f"cache: {cache_dir()}")
        for name, spec in DATASETS.items():
            print(f"{name:16s} {spec.n_classes:3d} classes  {spec.title}")
        return 0
    spec = get_spec(args.name)
    try:
        for split in ("train", "test"):
            x, y = load(spec.name, split, data_dir=args.data_dir, download=args.cmd == "fetch")
            print(f"{spec.name} {split}: {x.shape[0]} images {x.shape[1:]}, verified")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
