"""Side-by-side CPU throughput: batscope (exact, event-based) vs snnTorch BPTT at dt = 1 ms.

``python benchmarks/peer_snntorch.py [--samples 1000] [--batch 50] [--threads 2]``

Both train the same 784-800-10 task in one process, one after the other, on the same real MNIST
batches (``../shared/datasets/mnist``; the embedded sample if absent), TTFS-encoded as
t = 0.1 (1 - x/255) s with zero pixels silent (docs/training.md §1), batch 50, float32, Adam 3e-3
and the spike-count targets 15 (true class) / 3 (others). Each side gets one untimed warm-up batch.

The peer is the clock-based equivalent: ``snn.Synaptic`` (current-based LIF, docs/model.md §2)
stepped T = t_max / dt = 200 times, alpha = e^{-dt/τs}, beta = e^{-dt/τ}, τs = 0.13 s, τ = 2τs,
subtractive reset, fast-sigmoid surrogate, BPTT through all 200 steps, MSE on spike counts.
Its membrane is ``mem[k] = w (beta^{k+1} - alpha^{k+1}) / (beta - alpha)`` for one input of
weight w, i.e. the exact PSP ``w τ (e^{-s/τ} - e^{-s/τs})`` (docs/model.md §3) divided by
``c = τ (beta - alpha)`` (≈ dt); thresholds are θ / c, so batscope's U(-1, 1) weights give the
same dynamics. The peer is not a batscope dependency: ``pip install torch snntorch`` locally.

The peer is timed twice: fc1 once a step (the snnTorch tutorial loop) and fc1 hoisted out of the
loop. Prints one JSON object: machine, batscope and both peer variants' samples/s, speed-ups.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
from batscope import datasets
from batscope.engine import bench

TAU_S = 0.13
TAU = 2 * TAU_S
THETAS = (0.2, 1.3)  # paper thresholds, hidden and output (docs/training.md §3)
T_MAX = 0.2
DT = 1e-3
N_STEPS = round(T_MAX / DT)
Y_TRUE, Y_FALSE = 15.0, 3.0
LR = 3e-3
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


def load_images(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """The first ``n`` training images [n, 784] uint8 and labels, as ``engine.bench`` takes them."""
    if (MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        images, labels = datasets.load("mnist", "train", data_dir=MNIST_DIR, download=False)
        source = "mnist"
    else:
        images, labels = datasets.load_sample("mnist", "train")
        source = "embedded sample"
    if len(images) < n:
        raise ValueError(f"samples: {source} has only {len(images)} images, asked for {n}")
    return images[:n].reshape(n, -1), labels[:n].astype(np.int64), source


def encode_steps(images: np.ndarray) -> np.ndarray:
    """TTFS spikes on the clock grid: [T, B, 784] float32 0/1.

    A spike at t ∈ (t_{n-1}, t_n] lands on step n = ceil(t / dt) (docs/model.md §1); x = 0 is
    silent.
    """
    t = datasets.ttfs_times(images, t_enc=datasets.T_ENC)  # [B, 784], +inf where x == 0
    lit = np.isfinite(t)
    step = np.clip(np.ceil(np.where(lit, t, 0.0) / DT - 1e-9), 0, N_STEPS - 1).astype(np.int64)
    b, n = np.nonzero(lit)
    out = np.zeros((N_STEPS, images.shape[0], images.shape[1]), dtype=np.float32)
    out[step[b, n], b, n] = 1.0
    return out


def time_snntorch(batches, threads: int, hoist: bool = False) -> dict:
    """Train/forward throughput of the snnTorch 784-800-10 ``Synaptic`` network (BPTT).

    ``hoist``: apply fc1 to all 200 steps in one matmul before the loop (the input is known in
    advance), instead of once a step as in the snnTorch tutorials. Same maths, fewer calls.
    """
    import snntorch as snn
    import torch
    from snntorch import surrogate

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    alpha, beta = math.exp(-DT / TAU_S), math.exp(-DT / TAU)
    c = TAU * (beta - alpha)  # snnTorch membrane = exact u / c (module docstring)
    grad = surrogate.fast_sigmoid()

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(784, 800, bias=False)
            self.fc2 = torch.nn.Linear(800, 10, bias=False)
            for fc in (self.fc1, self.fc2):  # batscope's default init, Uniform(-1, 1)
                torch.nn.init.uniform_(fc.weight, -1.0, 1.0)
            kw = {"spike_grad": grad, "reset_mechanism": "subtract"}
            self.lif1 = snn.Synaptic(alpha, beta, threshold=THETAS[0] / c, **kw)
            self.lif2 = snn.Synaptic(alpha, beta, threshold=THETAS[1] / c, **kw)

        def forward(self, x):  # x [T, B, 784] -> output spike counts [B, 10], hidden spikes
            syn1, mem1 = self.lif1.reset_mem()
            syn2, mem2 = self.lif2.reset_mem()
            counts, hidden = 0, 0
            cur1 = self.fc1(x) if hoist else x
            for cur1_t in cur1:
                cur1_t = cur1_t if hoist else self.fc1(cur1_t)
                spk1, syn1, mem1 = self.lif1(cur1_t, syn1, mem1)
                spk2, syn2, mem2 = self.lif2(self.fc2(spk1), syn2, mem2)
                counts = counts + spk2
                hidden = hidden + spk1.detach()
            return counts, hidden

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    one_hot = torch.nn.functional.one_hot
    data = [
        (torch.from_numpy(x), torch.where(one_hot(torch.from_numpy(lab), 10) > 0, Y_TRUE, Y_FALSE))
        for x, lab in batches
    ]

    def train_step(x, y):
        counts, _ = net(x)
        loss = torch.nn.functional.mse_loss(counts, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    train_step(*data[0])  # warm-up: allocator, thread pool, first-call dispatch
    t0 = time.perf_counter()
    with torch.no_grad():
        hidden = [net(x)[1].sum(dim=1).mean().item() for x, _ in data[1:]]
    t_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    losses = [train_step(x, y) for x, y in data[1:]]
    t_train = time.perf_counter() - t0
    n = (len(data) - 1) * data[0][0].shape[1]
    return {
        "torch": torch.__version__,
        "snntorch": snn.__version__,
        "fc1": "one matmul for all steps" if hoist else "per step",
        "threads": torch.get_num_threads(),
        "dt_s": DT,
        "steps": N_STEPS,
        "samples": n,
        "thresholds": [THETAS[0] / c, THETAS[1] / c],
        "hidden_spikes_per_sample": float(np.mean(hidden)),
        "loss_first_last": [losses[0], losses[-1]],
        "forward_samples_per_s": n / t_fwd,
        "train_samples_per_s": n / t_train,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--samples", type=int, default=1000, help="timed samples per side")
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--threads", type=int, default=2, help="torch threads (numba keeps its own)")
    a = p.parse_args(argv)
    if a.batch < 1 or a.samples < a.batch or a.threads < 1:
        p.error("need --batch >= 1, --samples >= --batch and --threads >= 1")
    n_batches = a.samples // a.batch
    images, labels, source = load_images((n_batches + 1) * a.batch)  # +1: the warm-up batch
    batches = [
        (encode_steps(images[k : k + a.batch]), labels[k : k + a.batch])
        for k in range(0, len(images), a.batch)
    ]
    load_before = os.getloadavg()
    peer = time_snntorch(batches, a.threads)
    hoisted = time_snntorch(batches, a.threads, hoist=True)
    ours = bench.run("cpu", a.batch, n_batches * a.batch, "float32")
    keys = ("train_samples_per_s", "forward_samples_per_s")

    def speedup(peer_res):
        return {k.removesuffix("_samples_per_s"): ours[k] / peer_res[k] for k in keys}

    res = {
        "machine": {
            "cores": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "data": source,
        "batch": a.batch,
        "batscope": {
            **{k: ours[k] for k in (*keys, "samples", "threads", "spikes_per_sample")},
            "data": ours["source"],
        },
        "snntorch_bptt_dt1ms": peer,
        "snntorch_bptt_dt1ms_hoisted": hoisted,
        "speedup": speedup(peer),
        "speedup_vs_hoisted": speedup(hoisted),
    }
    json.dump(res, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
