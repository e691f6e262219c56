"""batscope's CUDA engine beside the authors' BATS code, on one GPU, in one process.

    python benchmarks/peer_bats_reference.py --reference ../shared/peers/bats-reference \
        [--net dense net3] [--samples N] [--repeats 3] [--data-dir DIR] [--out FILE]

The authors' code (the "reference") is only imported and driven through its public classes,
as its own MNIST scripts drive it; nothing of it is copied. For each network (the paper's
784-800-10 and the convolutional Net3, 15C5-P2-40C5-P2-300-10, with the reference's MNIST
settings) both engines start from the same float32 weights, batscope's U(-1, 1) draw, and see
the same encoded MNIST batches on the device, so their spike activity is the same.

1. Agreement on the first batch: spike counts per layer (fraction of neurons that agree),
   spike times where the counts agree (largest difference, seconds) and the weight gradients
   of one backward pass with the spike-count loss (relative difference and cosine).
2. Speed: after a warm-up step (kernel compilation), forward-only and training samples/s, the
   best of three passes with the engines taking turns (one
   training step = forward, loss errors, backward, batch mean, Adam, weight update), first at
   the paper's batch size and then at batch 1000. Both engines time the same minimal step,
   without the host copies of the reference's monitors.

Prints one JSON object; ``--out`` also writes it to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

T_MAX = 0.2
# the reference's MNIST scripts: (neurons or filter, tau_s, theta, buffer) per layer, targets;
# timed samples per pass (a pass lasts about a second or more on an H200)
DENSE = dict(
    layers=[(800, 0.13, 0.2, 30), (10, 0.13, 1.3, 30)], y_true=15, batch=50, samples=10_000
)
NET3 = dict(
    layers=[(15, 0.13, 0.04, 1), "pool", (40, 0.13, 0.8, 3), "pool",
            (300, 0.13, 0.6, 10), (10, 0.13, 0.3, 30)],
    y_true=30, batch=20, samples=2000,
)  # fmt: skip


def _sync(cp):
    cp.cuda.Stream.null.synchronize()


def reference_network(net: str, weights: list, cp):
    """The reference's network for ``net`` with batscope's initial ``weights`` (copied)."""
    from bats.Layers import ConvInputLayer, ConvLIFLayer, InputLayer, LIFLayer
    from bats.Layers.PoolingLayer import PoolingLayer  # not exported by bats.Layers
    from bats.Network import Network

    spec = DENSE if net == "dense" else NET3
    ws = iter([cp.array(w, dtype=cp.float32) for w in weights])
    network = Network()
    if net == "dense":
        prev = InputLayer(n_neurons=784, name="input")
    else:
        prev = ConvInputLayer(neurons_shape=np.array([28, 28, 1]), name="input")
    network.add_layer(prev, input=True)
    # the layers before the last pool are convolutions, those after it dense
    pools = [k for k, layer in enumerate(spec["layers"]) if layer == "pool"]
    first_dense = pools[-1] + 1 if pools else 0
    for k, layer in enumerate(spec["layers"]):
        if layer == "pool":
            prev = PoolingLayer(prev, name=f"pool{k}")
        elif k < first_dense:
            c, tau_s, theta, buf = layer
            w = next(ws)
            prev = ConvLIFLayer(
                previous_layer=prev, filters_shape=np.array([5, 5, c]), tau_s=tau_s,
                theta=theta, delta_theta=theta, weight_initializer=lambda *s, w=w: w.copy(),
                max_n_spike=buf, name=f"conv{k}",
            )  # fmt: skip
        else:
            n, tau_s, theta, buf = layer
            w = next(ws)
            prev = LIFLayer(
                previous_layer=prev, n_neurons=n, tau_s=tau_s, theta=theta, delta_theta=theta,
                weight_initializer=lambda *s, w=w: w.copy(), max_n_spike=buf, name=f"fc{k}",
            )  # fmt: skip
        network.add_layer(prev)
    return network


class Reference:
    """One training step and one forward pass of the reference, as its MNIST scripts do them."""

    def __init__(self, net: str, weights: list, cp, lr=3e-3):
        from bats.Losses import SpikeCountClassLoss
        from bats.Optimizers import AdamOptimizer

        self.cp = cp
        self.network = reference_network(net, weights, cp)
        spec = DENSE if net == "dense" else NET3
        self.loss = SpikeCountClassLoss(target_false=3, target_true=spec["y_true"])
        self.opt = AdamOptimizer(learning_rate=lr)
        # Its step counter is a NumPy int32 scalar, and under NumPy 2's promotion rules
        # float32 ** int32 is float64, which its float32 kernels refuse: count in float32.
        self.opt._AdamOptimizer__t = np.float32(0)

    def forward(self, times, counts, training=False):
        self.network.reset()
        self.network.forward(times, counts, max_simulation=T_MAX, training=training)
        return self.network.output_spike_trains

    def gradient(self, times, counts, labels):
        out_t, out_n = self.forward(times, counts, training=True)
        _, errors = self.loss.compute_loss_and_errors(out_t, out_n, labels)
        grads = self.network.backward(errors)
        return [None if g is None else self.cp.mean(g, axis=0) for g in grads]

    def train_step(self, times, counts, labels):
        self.network.apply_deltas(self.opt.step(self.gradient(times, counts, labels)))


class Ours:
    """The same step with batscope (engine/bench.py's network and loss)."""

    def __init__(self, net: str, weights: list, lr=3e-3):
        from batscope.engine.bench import build_network
        from batscope.engine.losses import SpikeCountClass
        from batscope.engine.optim import Adam

        self.net, y_true = build_network(net, "gpu", "float32", 0)
        self.net.weights = weights
        self.loss = SpikeCountClass(y_true, 3)
        self.opt = Adam(lr)

    def forward(self, inp):
        return self.net.forward(inp, T_MAX)

    def gradient(self, inp, labels):
        out = self.forward(inp)
        grads = self.net.backward(self.loss.errors(out[-1], labels))
        return [g / inp.batch_size for g in grads]

    def train_step(self, inp, labels):
        self.opt.step(self.net.weights, self.gradient(inp, labels))


def agreement(ours: Ours, ref: Reference, batch, cp) -> dict:
    """Counts, times and gradients of both engines on one batch, layer by layer."""
    inp, times, counts, labels = batch
    out = ours.forward(inp)
    ref.forward(times, counts)
    layers = []
    for o, layer in zip(out, ref.network.layers[1:], strict=True):
        rt, rn = layer.spike_trains
        on, rn = cp.asnumpy(o.counts), cp.asnumpy(rn).reshape(o.counts.shape)
        ot = cp.asnumpy(o.times)
        rt = cp.asnumpy(rt).reshape(ot.shape[0], ot.shape[1], -1)
        same = on == rn
        slots = min(ot.shape[2], rt.shape[2])
        k = np.arange(slots)[None, None, :] < np.minimum(on, slots)[:, :, None]
        mask = same[:, :, None] & k
        dt = np.abs(ot[:, :, :slots][mask] - rt[:, :, :slots][mask])
        layers.append({
            "spikes_per_sample": float(on.sum(axis=1).mean()),
            "counts_agree": float(same.mean()),
            "max_time_diff_s": float(dt.max()) if dt.size else 0.0,
        })  # fmt: skip
    g_ours = [cp.asnumpy(g) for g in ours.gradient(inp, labels)]
    g_ref = [cp.asnumpy(g) for g in ref.gradient(times, counts, labels) if g is not None]
    grads = []
    for a, b in zip(g_ours, g_ref, strict=True):
        a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
        scale = max(np.abs(b).max(), 1e-30)
        cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-300))
        grads.append({"max_rel_diff": float(np.abs(a - b).max() / scale), "cosine": cos})
    return {"layers": layers, "gradients": grads}


def _time(fn, batches, cp) -> float:
    _sync(cp)
    t0 = time.perf_counter()
    for b in batches:
        fn(b)
    _sync(cp)
    return time.perf_counter() - t0


def speed(net, weights, batches, cp, repeats: int) -> dict:
    """Forward and training samples/s of both engines, each from ``weights``: the best of
    ``repeats`` passes over ``batches[1:]``, the engines taking turns (clock ramps and other
    work on the machine hit both alike); every pass is kept under ``passes``."""
    n = sum(b[0].batch_size for b in batches[1:])
    ours, ref = Ours(net, weights), Reference(net, weights, cp)
    ours.train_step(batches[0][0], batches[0][3])  # warm-up: kernel compilation
    ref.train_step(*batches[0][1:])
    steps = {
        "batscope_forward": lambda b: ours.forward(b[0]),
        "reference_forward": lambda b: ref.forward(b[1], b[2]),
        "batscope_train": lambda b: ours.train_step(b[0], b[3]),
        "reference_train": lambda b: ref.train_step(*b[1:]),
    }
    passes = {k: [] for k in steps}
    for _ in range(repeats):
        for k, fn in steps.items():
            passes[k].append(round(n / _time(fn, batches[1:], cp), 1))
    res = {f"{k}_samples_per_s": max(v) for k, v in passes.items()}
    res["train_ratio"] = res["batscope_train_samples_per_s"] / res["reference_train_samples_per_s"]
    res["samples"] = n
    res["passes"] = passes
    return res


def device_batches(images, labels, batch, cp):
    """(batscope input, reference times, reference counts, labels) per batch, on the GPU."""
    from batscope.engine.bench import encode
    from batscope.engine.spikes import SpikeTrains

    out = []
    for k in range(len(images) // batch):
        st = encode(images[k * batch : (k + 1) * batch], np.float32)
        t, n = cp.asarray(st.times), cp.asarray(st.counts)
        lab = labels[k * batch : (k + 1) * batch]
        out.append((SpikeTrains(t, n), t, n, cp.asarray(lab)))
    return out


def run_net(net: str, samples: int | None, data_dir, cp, repeats: int) -> dict:
    from batscope.engine.bench import build_network, load_images

    spec = DENSE if net == "dense" else NET3
    weights = [cp.asnumpy(w) for w in build_network(net, "gpu", "float32", 0)[0].weights]
    res = {"net": net}
    for batch in (spec["batch"], 1000):
        want = spec["samples"] if samples is None else samples
        n = max(want, 3 * batch) // batch * batch + batch  # a warm-up batch, then timed ones
        images, labels, source = load_images(n, 0, data_dir)
        res["source"] = source
        batches = device_batches(images, labels, batch, cp)
        key = f"batch_{batch}"
        if batch == spec["batch"]:
            try:
                res["agreement"] = agreement(Ours(net, weights), Reference(net, weights, cp),
                                             batches[0], cp)  # fmt: skip
            except Exception:  # report it; the timing may still run
                res["agreement"] = {"error": traceback.format_exc(limit=6)}
        try:
            res[key] = speed(net, weights, batches, cp, repeats)
        except Exception:
            res[key] = {"error": traceback.format_exc(limit=6)}
        print(json.dumps({net: {key: res.get(key)}}), file=sys.stderr, flush=True)
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", required=True, help="folder of the authors' BATS code")
    p.add_argument("--net", nargs="+", default=["dense", "net3"], choices=["dense", "net3"])
    p.add_argument("--samples", type=int, help="timed samples per pass (10000 dense, 2000 Net3)")
    p.add_argument("--repeats", type=int, default=3, help="timed passes per engine (best kept)")
    p.add_argument("--data-dir", default=None, help="folder with the MNIST .gz files")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    if a.repeats < 1 or (a.samples is not None and a.samples < 1):
        p.error("--samples and --repeats must be >= 1")
    if not (Path(a.reference) / "bats").is_dir():
        p.error(f"{a.reference} holds no bats/ package (the authors' code)")
    sys.path.insert(0, str(Path(a.reference).resolve()))
    import cupy as cp

    props = cp.cuda.runtime.getDeviceProperties(0)
    result = {"device": props["name"].decode(), "cupy": cp.__version__, "nets": []}
    for net in a.net:
        try:
            result["nets"].append(run_net(net, a.samples, a.data_dir, cp, a.repeats))
        except Exception:
            result["nets"].append({"net": net, "error": traceback.format_exc(limit=8)})
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
