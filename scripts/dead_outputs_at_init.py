"""Count output neurons silent at initialisation, batscope's init against the reference's.

The Fashion-MNIST preset (784-400-400-10, θ 0.13 / 0.45 / 0.7, S 5 / 5 / 20, τs 0.13 s, T_sim 0.2 s)
is built once per seed and run on the first ``--images`` training images (TTFS, T_enc 0.1 s). Two
initialisations, both i.i.d. U(−1, 1) in float32 with no fan-in scaling (docs/training.md §3):

- ``batscope``: ``Network(seed=s)`` (NumPy ``default_rng(s)``, layer by layer);
- ``reference``: the authors' script draws each layer in turn from CuPy's global generator,
  ``uniform(-1, 1, (n_post, n_pre), float32)``; with no GPU this draws the same distribution in the
  same order from NumPy's legacy ``RandomState(s)`` (CuPy's stream itself cannot be replayed here);
- ``redraw-silent``: batscope's, then the remedy beyond the paper ``--remedy redraw-silent``
  (silent output rows drawn again from U(−1, 1) until they fire on one of the images);
- ``reference-cupy`` (with ``--cupy``, on a machine with CuPy and a GPU): the reference's own
  draw, CuPy's global generator seeded with ``cupy.random.seed(s)``, every layer in turn, as its
  scripts' ``weight_initializer`` does; the network then runs on the CPU as for the others.

    python scripts/dead_outputs_at_init.py --data-dir ~/data/fashion-mnist
    python scripts/dead_outputs_at_init.py --seeds 0 1 2 3 4 5 6 7 8 9 --images 500

Without ``--data-dir`` it uses the embedded Fashion-MNIST sample. Seconds after Numba's compile.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from batscope import datasets
from batscope.engine import Dense, Network
from batscope.engine.backend import gpu_available, gpu_status
from batscope.training.experiments import experiment_config
from batscope.training.init_health import dead_at_init
from batscope.training.remedies import redraw_silent


def fashion_network(seed: int, dtype: str = "float32") -> Network:
    """The ``fashion`` experiment's network with batscope's initialisation for ``seed``."""
    layers = experiment_config("fashion")["network"]["layers"]
    specs = [Dense(d["size"], d["tau_s"], d["theta"], d["reset"], d["n_max"]) for d in layers]
    return Network(784, specs, backend="cpu", dtype=dtype, seed=seed)


def reference_weights(net: Network, seed: int) -> list[np.ndarray]:
    """U(−1, 1) float32, one layer after the other from one generator (the authors' scheme)."""
    rng = np.random.RandomState(seed)
    return [rng.uniform(-1.0, 1.0, size=s).astype(np.float32) for s in net.weight_shapes()]


def reference_cupy_weights(net: Network, seed: int) -> list[np.ndarray]:
    """The reference's draw itself: CuPy's global generator, one layer after the other."""
    import cupy

    cupy.random.seed(seed)
    shapes = net.weight_shapes()
    return [cupy.random.uniform(-1.0, 1.0, size=s, dtype=cupy.float32).get() for s in shapes]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", help="folder with the Fashion-MNIST IDX files (else the sample)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--images", type=int, default=500, help="first N training images")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.add_argument("--cupy", action="store_true", help="add the reference's CuPy draw (GPU)")
    args = p.parse_args(argv)
    if args.cupy and not gpu_available():
        p.error(f"--cupy needs CuPy and a GPU: {gpu_status()}")
    if args.data_dir:
        images, _ = datasets.load("fashion-mnist", "train", args.data_dir, verify=False)
    else:
        images, _ = datasets.load_sample("fashion-mnist", split="train")
    x = datasets.encode_ttfs(images[: args.images], t_enc=0.1, dtype="float32")
    totals = {"batscope": 0, "reference": 0, "redraw-silent": 0}
    if args.cupy:
        totals["reference-cupy"] = 0
    with_dead, rare = dict(totals), dict(totals)
    for seed in args.seeds:
        net = fashion_network(seed)
        found = {"batscope": dead_at_init(net, x, 0.2)}
        net.weights = reference_weights(net, seed)
        found["reference"] = dead_at_init(net, x, 0.2)
        net = fashion_network(seed)
        draws = redraw_silent(net, x, 0.2, seed)
        found["redraw-silent"] = {**dead_at_init(net, x, 0.2), "redrawn": draws}
        if args.cupy:
            net.weights = reference_cupy_weights(net, seed)
            found["reference-cupy"] = dead_at_init(net, x, 0.2)
        for init, d in found.items():
            totals[init] += len(d["silent_outputs"])
            with_dead[init] += bool(d["silent_outputs"])
            rare[init] += len(d["rare_outputs"])
            row = {"seed": seed, "init": init, **d}
            if args.json:
                print(json.dumps(row))
            else:
                dead = " / ".join(f"{100 * f:.1f} %" for f in d["dead_hidden"])
                print(
                    f"seed {seed:2d} {init:13s}: silent outputs {list(d['silent_outputs'])!s:10s} "
                    f"at most 1 %: {list(d['rare_outputs'])!s:10s} dead hidden {dead}"
                    + (f" (redrawn {d['redrawn']})" if d.get("redrawn") else "")
                )
    n = len(args.seeds)
    for init in totals:
        print(
            f"{init}: {with_dead[init]} of {n} seeds with a silent output, "
            f"{totals[init]} silent outputs in all, {rare[init]} firing on at most 1 % of the "
            f"{x.batch_size} images"
        )


if __name__ == "__main__":
    main()
