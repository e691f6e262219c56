"""Yin-Yang with batscope: single-spike (TTFS cross-entropy) and multi-spike (spike count).

Trains 5-H-3 (H = 120 by default) on the 5 000 training samples, evaluates the validation split
after every epoch, keeps the weights of the best validation epoch and reports their test
accuracy::

    python benchmarks/yinyang.py --variant single
    python benchmarks/yinyang.py --variant multi
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from batscope import datasets
from batscope.engine import Adam, Dense, Network, Normal, SpikeCountClass, TTFSCrossEntropy

T_MAX = 0.06  # s: the inputs end at 0.02 s (datasets/yinyang.py encoding)
VARIANTS = {
    # loss, spikes per neuron, hidden initialiser (mean, std), learning rate
    "single": (lambda: TTFSCrossEntropy(0.005), 1, (0.0, 6.0), 3e-3),
    "multi": (lambda: SpikeCountClass(5, 1), 10, (1.0, 5.0), 1e-2),
}


def accuracy(net, loss, inp, labels) -> float:
    out = net.forward(inp, T_MAX)
    return float((np.asarray(loss.predict(out[-1])) == labels).mean())


def run(variant, hidden, epochs, decay, seed, lr=None, batch=20):
    make_loss, n_max, init, default_lr = VARIANTS[variant]
    lr = default_lr if lr is None else lr
    loss = make_loss()
    split = {s: datasets.load("yin-yang", s) for s in ("train", "val", "test")}
    enc = {s: datasets.encode_yinyang(x) for s, (x, _) in split.items()}
    layers = [
        Dense(hidden, 0.01, 0.03, n_max=n_max, init=Normal(*init)),
        Dense(3, 0.01, 0.03, n_max=n_max, init=Normal(6.0, 2.0)),
    ]
    net, opt = Network(5, layers, seed=seed), Adam(lr)
    rng = np.random.default_rng(seed)
    y = split["train"][1]
    best = (-1.0, 0, None)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(y))
        for s in range(0, len(y), batch):
            idx = order[s : s + batch]
            out = net.forward(enc["train"].take(idx), T_MAX)
            grads = net.backward(loss.errors(out[-1], y[idx]))
            opt.step(net.weights, [g / len(idx) for g in grads])
        opt.lr = opt.lr * decay
        val = accuracy(net, loss, enc["val"], split["val"][1])
        if val > best[0]:
            best = (val, epoch, [np.array(w) for w in net.weights])
        print(f"epoch {epoch:3d}  val {val:.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    net.weights = best[2]
    test = accuracy(net, loss, enc["test"], split["test"][1])
    print(f"{variant}: best val {best[0]:.3f} at epoch {best[1]}, test {test:.3f}")
    return test


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=sorted(VARIANTS), default="single")
    p.add_argument("--hidden", type=int, default=120)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--decay", type=float, default=0.97, help="learning-rate factor per epoch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lr", type=float, default=None, help="Adam's initial rate (per variant)")
    a = p.parse_args()
    run(a.variant, a.hidden, a.epochs, a.decay, a.seed, a.lr)


if __name__ == "__main__":
    main()
