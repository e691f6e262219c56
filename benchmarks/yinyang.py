"""Yin-Yang with batscope: single-spike (TTFS cross-entropy) and multi-spike (spike count).

The recipe is the experiments' (``batscope train yin-yang-single`` / ``yin-yang-multi``,
training/experiments.py): 5-H-3 (H = 120 by default) on the 5 000 training samples, the
validation split evaluated after every epoch, the weights of the best validation epoch kept and
their test accuracy reported. This script overrides a few of its settings for exploration and
trains with the same run session as ``batscope train``::

    python benchmarks/yinyang.py --variant single
    python benchmarks/yinyang.py --variant multi --hidden 60 --epochs 20
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from batscope.training.experiments import experiment_config
from batscope.training.runconfig import validate_run_config
from batscope.training.runner import RunSession


def run(variant, hidden=None, epochs=None, decay=None, seed=None, lr=None, out=None) -> dict:
    """Train one run of ``yin-yang-<variant>`` with the given overrides; its summary."""
    config = experiment_config(f"yin-yang-{variant}")
    tr = config["training"]
    if hidden is not None:
        config["network"]["layers"][0]["size"] = hidden
    for key, value in (("epochs", epochs), ("lr_decay", decay), ("seed", seed), ("lr", lr)):
        if value is not None:
            tr[key] = value
    config = validate_run_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        session = RunSession(config, Path(out or tmp) / f"yin-yang-{variant}", say=print)
        summary = session.run(session.prepare(resume=False))
    best = summary["best"]
    print(
        f"{variant}: best val {best['accuracy']:.3f} at epoch {best['epoch']}, "
        f"test {best['test_accuracy']:.3f} ({summary['train_seconds']:.0f} s training)"
    )
    return summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=["single", "multi"], default="single")
    p.add_argument("--hidden", type=int, help="hidden neurons (default: the experiment's)")
    p.add_argument("--epochs", type=int, help="epochs (default: the experiment's)")
    p.add_argument("--decay", type=float, help="learning-rate factor per epoch")
    p.add_argument("--seed", type=int, help="seed (default: the experiment's)")
    p.add_argument("--lr", type=float, help="Adam's initial rate (default: the experiment's)")
    p.add_argument("--out", type=Path, help="keep the run folder here (default: a temporary one)")
    a = p.parse_args()
    run(a.variant, a.hidden, a.epochs, a.decay, a.seed, a.lr, a.out)


if __name__ == "__main__":
    main()
