"""Save/load: npz weights + JSON config, atomic, pickle-free, network untouched on any error."""

import json

import numpy as np
import pytest
from batscope.engine import Dense, Network, Normal, SpikeTrains, Uniform


def _net(seed=3, dtype="float64"):
    layers = [
        Dense(5, 0.1, 0.1, 0.2, n_max=7, init=Normal(1.0, 0.5)),
        Dense(3, 0.13, 1.3, init=Uniform(0, 1)),
    ]
    return Network(4, layers, dtype=dtype, seed=seed)


def test_round_trip_config_weights_and_outputs(tmp_path):
    net = _net(dtype="float32")
    net.weights = [w * 1.5 for w in net.weights]  # not the seeded init
    net.save(tmp_path / "model")
    assert (tmp_path / "model.npz").is_file() and (tmp_path / "model.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files
    cfg = json.loads((tmp_path / "model.json").read_text())
    assert cfg["format"] == "batscope-network" and cfg["version"] == 1
    assert cfg["n_inputs"] == 4 and cfg["dtype"] == "float32" and cfg["seed"] == 3
    assert cfg["layers"][0] == net.layers[0].to_dict()
    for path in (tmp_path / "model", tmp_path / "model.json", str(tmp_path / "model.npz")):
        back = Network.load(path)
        assert back.layers == net.layers and back.dtype == np.float32
        for a, b in zip(back.weights, net.weights, strict=True):
            np.testing.assert_array_equal(a, b)
    inp = SpikeTrains.from_arrays(np.sort(np.random.default_rng(0).uniform(0, 0.3, (2, 4, 3)), 2))
    o1 = net.forward(inp, 1.0)
    o2 = back.forward(inp, 1.0)
    np.testing.assert_array_equal(o1[-1].times, o2[-1].times)


def test_config_round_trip_reinitializes_identically():
    net = _net()
    clone = Network.from_config(net.config())
    for a, b in zip(net.weights, clone.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    w0 = [w.copy() for w in net.weights]
    net.weights = [w + 1 for w in net.weights]
    net.reinitialize()
    np.testing.assert_array_equal(net.weights[0], w0[0])
    net.reinitialize(seed=9)
    assert net.seed == 9 and not np.array_equal(net.weights[0], w0[0])


def test_load_weights_replaces_and_checks_shape(tmp_path):
    a, b = _net(seed=1), _net(seed=2)
    a.save(tmp_path / "a")
    b.load_weights(tmp_path / "a")
    np.testing.assert_array_equal(b.weights[1], a.weights[1])
    other = Network(4, [Dense(6, 0.1, 0.1), Dense(3, 0.1, 0.1)], seed=0)
    before = [w.copy() for w in other.weights]
    with pytest.raises(ValueError, match="shape"):
        other.load_weights(tmp_path / "a")
    for x, y in zip(other.weights, before, strict=True):
        np.testing.assert_array_equal(x, y)


def test_corrupt_and_wrong_files_raise_and_leave_network_untouched(tmp_path):
    net = _net()
    net.save(tmp_path / "m")
    target = _net(seed=5)
    before = [w.copy() for w in target.weights]

    def untouched():
        for x, y in zip(target.weights, before, strict=True):
            np.testing.assert_array_equal(x, y)

    (tmp_path / "bad.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match="bad.npz"):
        target.load_weights(tmp_path / "bad.npz")
    untouched()
    raw = (tmp_path / "m.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError):
        target.load_weights(tmp_path / "trunc")
    untouched()
    np.savez(tmp_path / "keys.npz", a=np.ones(3))
    with pytest.raises(ValueError, match="w0"):
        target.load_weights(tmp_path / "keys")
    untouched()
    np.savez(tmp_path / "nan.npz", w0=np.full((5, 4), np.nan), w1=np.ones((3, 5)))
    with pytest.raises(ValueError, match="finite"):
        target.load_weights(tmp_path / "nan")
    untouched()
    np.savez(tmp_path / "obj.npz", w0=np.array([{"x": 1}], dtype=object), w1=np.ones((3, 5)))
    with pytest.raises(ValueError):  # pickled object arrays are refused, never loaded
        target.load_weights(tmp_path / "obj")
    untouched()
    with pytest.raises(FileNotFoundError):
        target.load_weights(tmp_path / "missing")

    cfg = json.loads((tmp_path / "m.json").read_text())
    for name, change in [
        ("version", {"version": 2}),
        ("format", {"format": "other"}),
        ("layers", {"layers": [{"kind": "dense", "n": -1, "tau_s": 0.1, "theta": 0.1}]}),
    ]:
        (tmp_path / f"{name}.json").write_text(json.dumps(cfg | change))
        (tmp_path / f"{name}.npz").write_bytes(raw)
        with pytest.raises(ValueError, match=name if name != "layers" else "n"):
            Network.load(tmp_path / name)
    (tmp_path / "junk.json").write_text("{ not json")
    (tmp_path / "junk.npz").write_bytes(raw)
    with pytest.raises(ValueError, match="junk.json"):
        Network.load(tmp_path / "junk")


def test_save_overwrites_atomically(tmp_path):
    net = _net()
    net.save(tmp_path / "m")
    net.weights = [w * 0 + 0.5 for w in net.weights]
    net.save(tmp_path / "m.npz")
    back = Network.load(tmp_path / "m")
    assert (back.weights[0] == 0.5).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.npz"]
