"""Throughput benchmark: 784-800-10 on MNIST (method.md §11, FC multi-spike row).

``python -m batscope.engine.bench [--backend cpu|gpu] [--batch 50] [--samples N] [--dtype D]``
prints one JSON object: forward and training samples/s (after a warm-up batch, so JIT compile
time is excluded), the data source and, on the GPU, peak pool memory and a batch-1000 run.
Real MNIST is read from ``../shared/datasets/mnist`` beside the checkout when present; otherwise
synthetic TTFS data with MNIST-like statistics (about 150 input spikes per sample) is used.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .backend import resolve_backend, to_numpy
from .layers import Dense
from .network import Network
from .spikes import SpikeTrains

T_ENC = 0.1
T_MAX = 0.2
MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


def _read_idx_gz(path: Path) -> np.ndarray:
    """Minimal IDX reader (big-endian header, uint8 payload)."""
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` images [n, 784] uint8 and labels; real MNIST if available, else synthetic."""
    img_file = MNIST_DIR / "train-images-idx3-ubyte.gz"
    lab_file = MNIST_DIR / "train-labels-idx1-ubyte.gz"
    if img_file.is_file() and lab_file.is_file():
        images = _read_idx_gz(img_file)[:n].reshape(-1, 784)
        labels = _read_idx_gz(lab_file)[:n].astype(np.int64)
        return np.ascontiguousarray(images), labels, "mnist"
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 784), dtype=np.uint8)
    for b in range(n):  # ~150 lit pixels, a fifth of them saturated (like MNIST strokes)
        idx = rng.choice(784, size=150, replace=False)
        images[b, idx] = np.where(rng.random(150) < 0.2, 255, rng.integers(1, 255, 150))
    return images, rng.integers(0, 10, n), "synthetic"


def encode(images: np.ndarray, dtype) -> SpikeTrains:
    """TTFS: t = T_enc (1 - x/255), no spike for x = 0 (method.md §9)."""
    x = images.astype(np.float64)
    t = np.where(x > 0, T_ENC * (1.0 - x / 255.0), np.inf)[:, :, None].astype(dtype)
    return SpikeTrains(t, (x > 0).astype(np.int32))


def _loss_errors(out: SpikeTrains, labels, xp):
    """SpikeCountClass(15, 3) surrogate errors y - n on emitted spikes (method.md §7.1)."""
    try:
        from .losses import SpikeCountClass

        return SpikeCountClass(15, 3).errors(out, labels)
    except ImportError:
        n = out.counts.astype(out.dtype)
        y = xp.where(labels[:, None] == xp.arange(out.n_neurons)[None, :], 15.0, 3.0)
        err = (y - n)[:, :, None] * xp.ones_like(out.times)
        return xp.where(xp.isfinite(out.times), err, 0).astype(out.dtype)


def _optimizer(lr: float):
    try:
        from .optim import Adam

        return Adam(lr)
    except ImportError:
        return None


def _sync(xp):
    if xp is not np:
        xp.cuda.Stream.null.synchronize()


def run(backend="cpu", batch=50, samples=2000, dtype="float32", seed=0) -> dict:
    backend = resolve_backend(backend)
    net = Network(
        784,
        [Dense(800, 0.13, 0.2, n_max=30), Dense(10, 0.13, 1.3, n_max=30)],
        backend=backend,
        dtype=dtype,
        seed=seed,
    )
    xp = net.xp
    n_batches = max(1, samples // batch)
    images, labels, source = load_images((n_batches + 1) * batch, seed)
    data = []
    for k in range(n_batches + 1):  # on the backend already: transfers are not timed
        st = encode(images[k * batch : (k + 1) * batch], net.dtype)
        lab = labels[k * batch : (k + 1) * batch]
        data.append((SpikeTrains(xp.asarray(st.times), xp.asarray(st.counts)), xp.asarray(lab)))
    opt = _optimizer(3e-3)
    if backend == "gpu":
        from .gpu import reset_peak_memory

        reset_peak_memory()

    def train_step(inp, lab):
        out = net.forward(inp, T_MAX)
        grads = net.backward(_loss_errors(out[-1], lab, xp))
        grads = [g / inp.batch_size for g in grads]
        if opt is not None:
            opt.step(net.weights, grads)
        else:
            for w, g in zip(net.weights, grads, strict=True):
                w -= 3e-3 * g

    train_step(*data[0])  # warm-up: JIT compilation / kernel loading
    _sync(xp)
    t0 = time.perf_counter()
    for inp, _ in data[1:]:
        net.forward(inp, T_MAX)
    _sync(xp)
    t_fwd = time.perf_counter() - t0
    spikes = [s["spikes_per_sample"] for s in net.stats()]
    active = net.stats()[0]["active_fraction"]
    t0 = time.perf_counter()
    for inp, lab in data[1:]:
        train_step(inp, lab)
    _sync(xp)
    t_train = time.perf_counter() - t0
    n = n_batches * batch
    res = {
        "backend": backend,
        "dtype": net.dtype.name,
        "batch": batch,
        "samples": n,
        "source": source,
        "architecture": "784-800-10",
        "input_spikes_per_sample": float(to_numpy(data[1][0].counts).sum(axis=1).mean()),
        "spikes_per_sample": spikes,
        "hidden_active_fraction": active,
        "forward_samples_per_s": n / t_fwd,
        "train_samples_per_s": n / t_train,
        "optimizer": "Adam" if opt is not None else "SGD",
    }
    if backend == "cpu":
        import numba

        res["threads"] = numba.get_num_threads()
        res["load_average_1min"] = os.getloadavg()[0]  # other processes sharing the cores
    else:
        from .gpu import peak_memory_bytes

        res["peak_gpu_bytes"] = peak_memory_bytes()
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m batscope.engine.bench", description=__doc__)
    p.add_argument("--backend", default="cpu", choices=["cpu", "gpu", "auto"])
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.batch < 1 or a.samples < 1:
        p.error("--batch and --samples must be >= 1")
    res = run(a.backend, a.batch, a.samples, a.dtype, a.seed)
    if res["backend"] == "gpu":
        big = run("gpu", 1000, max(a.samples, 5000), a.dtype, a.seed)
        res["batch_1000"] = {
            k: big[k] for k in ("forward_samples_per_s", "train_samples_per_s", "peak_gpu_bytes")
        }
    json.dump(res, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
