"""Throughput benchmark: 784-800-10 (docs/training.md §3, FC multi-spike row) or the paper's
convolutional Net3, 15C5-P2-40C5-P2-300-10 (docs/conv-pool.md §3), on MNIST.

``python -m batscope.engine.bench [--net dense|net3] [--backend cpu|gpu] [--batch B]
[--samples N] [--dtype D] [--data-dir DIR] [--profile]`` prints one JSON object: forward and
training samples/s (after a warm-up batch, so JIT compile time is excluded), the data source
and, on the GPU, peak pool memory and a batch-1000 run. ``--profile`` adds the seconds spent in
each kernel entry point (per layer input size) during the timed training steps (CPU seconds
of all threads on the CPU).
Real MNIST is read from ``--data-dir`` (default ``../shared/datasets/mnist`` beside the
checkout) when present; otherwise the embedded MNIST sample of batscope.datasets is not
imported (the engine imports nothing of ours) and synthetic TTFS data with MNIST-like statistics
(about 150 input spikes per sample) is used.
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
from .layers import Conv2D, Dense, Pool2D
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


def load_images(n: int, seed: int = 0, data_dir=None) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` images [n, 784] uint8 and labels; real MNIST if available, else synthetic."""
    folder = MNIST_DIR if data_dir is None else Path(data_dir)
    img_file = folder / "train-images-idx3-ubyte.gz"
    lab_file = folder / "train-labels-idx1-ubyte.gz"
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
    """TTFS: t = T_enc (1 - x/255), no spike for x = 0 (docs/training.md §1)."""
    x = images.astype(np.float64)
    t = np.where(x > 0, T_ENC * (1.0 - x / 255.0), np.inf)[:, :, None].astype(dtype)
    return SpikeTrains(t, (x > 0).astype(np.int32))


def build_network(net: str, backend, dtype, seed) -> tuple[Network, float]:
    """The benchmarked network and its loss's target count for the true class."""
    if net == "dense":
        layers = [Dense(800, 0.13, 0.2, n_max=30), Dense(10, 0.13, 1.3, n_max=30)]
        return Network(784, layers, backend=backend, dtype=dtype, seed=seed), 15.0
    if net == "net3":  # the reference's MNIST conv set-up: tau_s 0.13, reset = theta, U(-1, 1)
        layers = [
            Conv2D(15, 5, 0.13, 0.04, n_max=1),
            Pool2D(2),
            Conv2D(40, 5, 0.13, 0.8, n_max=3),
            Pool2D(2),
            Dense(300, 0.13, 0.6, n_max=10),
            Dense(10, 0.13, 0.3, n_max=30),
        ]
        net3 = Network(
            input_shape=(28, 28, 1), layers=layers, backend=backend, dtype=dtype, seed=seed
        )
        return net3, 30.0
    raise ValueError(f"net must be 'dense' or 'net3', got {net!r}")


def _loss_errors(out: SpikeTrains, labels, y_true: float):
    """SpikeCountClass(y_true, 3) surrogate errors y - n on emitted spikes (docs/losses.md §2)."""
    from .losses import SpikeCountClass

    return SpikeCountClass(y_true, 3).errors(out, labels)


class _TimedKernels:
    """The network's kernel module with every entry point timed per (name, n_pre): CPU seconds
    of all threads on the CPU backend (robust on shared cores), wall seconds on the GPU."""

    def __init__(self, kernels, xp):
        self._kernels = kernels
        self._xp = xp
        self.seconds: dict[str, float] = {}

    def __getattr__(self, name):
        fn = getattr(self._kernels, name)
        if not callable(fn):
            return fn

        def timed(*args, **kwargs):
            t0 = time.process_time() if self._xp is np else time.perf_counter()
            out = fn(*args, **kwargs)
            _sync(self._xp)
            t1 = time.process_time() if self._xp is np else time.perf_counter()
            key = f"{name}[n_pre={args[0].shape[1]}]" if hasattr(args[0], "shape") else name
            self.seconds[key] = self.seconds.get(key, 0.0) + t1 - t0
            return out

        return timed


def _sync(xp):
    if xp is not np:
        xp.cuda.Stream.null.synchronize()


def run(
    backend="cpu", batch=50, samples=2000, dtype="float32", seed=0, net="dense", data_dir=None,
    profile=False,
) -> dict:  # fmt: skip
    from .optim import Adam

    backend = resolve_backend(backend)
    name = net
    net, y_true = build_network(name, backend, dtype, seed)
    xp = net.xp
    n_batches = max(1, samples // batch)
    images, labels, source = load_images((n_batches + 1) * batch, seed, data_dir)
    data = []
    for k in range(n_batches + 1):  # on the backend already: transfers are not timed
        st = encode(images[k * batch : (k + 1) * batch], net.dtype)
        lab = labels[k * batch : (k + 1) * batch]
        data.append((SpikeTrains(xp.asarray(st.times), xp.asarray(st.counts)), xp.asarray(lab)))
    opt = Adam(3e-3)
    if backend == "gpu":
        from .gpu import reset_peak_memory

        reset_peak_memory()

    def train_step(inp, lab):
        out = net.forward(inp, T_MAX)
        grads = net.backward(_loss_errors(out[-1], lab, y_true))
        opt.step(net.weights, [g / inp.batch_size for g in grads])

    train_step(*data[0])  # warm-up: JIT compilation / kernel loading
    _sync(xp)
    t0 = time.perf_counter()
    for inp, _ in data[1:]:
        net.forward(inp, T_MAX)
    _sync(xp)
    t_fwd = time.perf_counter() - t0
    spikes = [s["spikes_per_sample"] for s in net.stats()]
    active = net.stats()[0]["active_fraction"]
    timed = None
    if profile:
        timed = net._kernels = _TimedKernels(net._kernels, xp)
    t0, c0 = time.perf_counter(), time.process_time()
    for inp, lab in data[1:]:
        train_step(inp, lab)
    _sync(xp)
    t_train = time.perf_counter() - t0
    cpu_train = time.process_time() - c0
    n = n_batches * batch
    res = {
        "backend": backend,
        "dtype": net.dtype.name,
        "batch": batch,
        "samples": n,
        "source": source,
        "architecture": "784-800-10" if name == "dense" else "15C5-P2-40C5-P2-300-10",
        "input_spikes_per_sample": float(to_numpy(data[1][0].counts).sum(axis=1).mean()),
        "spikes_per_sample": spikes,
        "hidden_active_fraction": active,
        "forward_samples_per_s": n / t_fwd,
        "train_samples_per_s": n / t_train,
        # CPU seconds of all threads per training sample: on shared cores, wall time per sample
        # is at least this divided by the number of threads
        "train_cpu_ms_per_sample": 1e3 * cpu_train / n,
        "optimizer": "Adam",
    }
    if timed is not None:
        res["train_seconds"] = t_train
        res["kernel_seconds"] = {k: round(v, 4) for k, v in sorted(timed.seconds.items())}
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
    p.add_argument("--net", default="dense", choices=["dense", "net3"])
    p.add_argument("--batch", type=int, default=None, help="50 for dense, 20 for net3")
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files")
    p.add_argument("--profile", action="store_true", help="seconds per kernel entry point")
    a = p.parse_args(argv)
    batch = a.batch if a.batch is not None else (50 if a.net == "dense" else 20)
    if batch < 1 or a.samples < 1:
        p.error("--batch and --samples must be >= 1")
    res = run(a.backend, batch, a.samples, a.dtype, a.seed, a.net, a.data_dir, a.profile)
    if res["backend"] == "gpu":
        big = run("gpu", 1000, max(a.samples, 5000), a.dtype, a.seed, a.net, a.data_dir)
        res["batch_1000"] = {
            k: big[k] for k in ("forward_samples_per_s", "train_samples_per_s", "peak_gpu_bytes")
        }
    json.dump(res, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
