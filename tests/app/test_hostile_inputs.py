"""Hostile URLs and uploads: refused before anything is built, messages escaped, state unchanged."""

from __future__ import annotations

import io
import json
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from batscope.app.presets import apply_preset, load_preset
from batscope.app.urlstate import UrlState, read_query, set_sizes
from batscope.engine.network import Network
from batscope.training.files import model_bytes, read_model
from batscope.training.limits import MAX_QUERY_CHARS, MAX_WEIGHT_BYTES
from batscope.training.state import MAX_LAYERS, NetworkSpec, TrainingConfig, run_config

pn = pytest.importorskip("panel")
XSS = '<img src=x onerror="window.__xss = 1">'


def _state():
    net, cfg = NetworkSpec(), TrainingConfig()
    apply_preset(load_preset("convergence"), net, cfg)
    return UrlState(net, cfg)


# -- URL -----------------------------------------------------------------------------------------
def test_300_layer_url_is_refused_quickly_and_changes_nothing():
    state = _state()
    before = run_config(state.network, state.training)
    t0 = time.perf_counter()
    assert state.load("?sizes=" + "-".join(["1"] * 300)) is False
    assert time.perf_counter() - t0 < 0.5
    assert "sizes: at most 100 characters" in state.message
    assert state.load("?sizes=" + "-".join(["1"] * (MAX_LAYERS + 1))) is False
    assert f"at most {MAX_LAYERS} layers, not {MAX_LAYERS + 1}" in state.message
    assert run_config(state.network, state.training) == before


@pytest.mark.parametrize(
    ("search", "match"),
    [
        ("?lr=nan", "lr.*finite"),
        ("?lr=inf", "lr.*finite|lr.*at most"),
        ("?lr=1e400", "lr.*finite|lr.*at most"),
        ("?batch=100000", "batch_size.*at most 4096"),
        ("?epochs=1.5", "epochs.*not an integer"),
        ("?sizes=5000-2", "size.*at most 4096"),
        ("?sizes=4096-4096-4096-4096-4096", f"at most {16384}"),
        ("?sizes=2-x", "sizes must look like"),
        ("?task=cifar", "cifar"),
        ("?seed=7&t_max=-1", "t_max.*greater than 0"),
        ("?sizes=2&lr=" + "9" * 200, "at most 100 characters"),
        ("?seed=" + "1" * (MAX_QUERY_CHARS + 1), f"at most {MAX_QUERY_CHARS}"),
    ],
)
def test_out_of_schema_url_is_refused_whole(search, match):
    state = _state()
    before = run_config(state.network, state.training)
    assert state.load(search) is False
    assert state.message.startswith("**URL refused**")
    import re

    assert re.search(match, state.message.replace("\\", "")), state.message
    assert run_config(state.network, state.training) == before


def test_url_preset_name_is_escaped_in_the_message():
    state = _state()
    assert state.load("?preset=" + XSS.replace(" ", "%20")) is False
    assert "unknown preset" in state.message
    assert "<img" not in state.message and "&lt;img" in state.message


def test_a_good_url_applies_everything_and_clears_the_message():
    state = _state()
    state.message = "old"
    assert state.load("?preset=fashion-mnist&sizes=30-20-10&seed=7&lr=0.001&batch=20")
    assert state.message == ""
    assert state.network.sizes == [30, 20, 10]
    t = state.training
    assert (t.task, t.seed, t.lr, t.batch_size) == ("fashion-mnist", 7, 0.001, 20)
    assert state.preset == "fashion-mnist" and state.sizes == "30-20-10"


def test_read_query_ignores_unknown_keys_and_bounds_the_field_count():
    assert read_query("?sizes=2&bokeh-autoload=1") == {"sizes": "2"}
    with pytest.raises(ValueError):
        read_query("?" + "&".join(f"k{i}=1" for i in range(200)))


def test_set_sizes_checks_the_total_before_resizing():
    net = NetworkSpec()
    with pytest.raises(ValueError, match="at most 16384"):
        set_sizes(net, "4096-4096-4096-4096-2")
    assert net.sizes == [2]
    set_sizes(net, "10-4096-4000")
    set_sizes(net, "4096-10-4000")  # shrink first: never over the total on the way
    assert net.sizes == [4096, 10, 4000]


# -- uploads -------------------------------------------------------------------------------------
def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _model_json(n_inputs=4, sizes=(2,)) -> str:
    layer = {"kind": "dense", "tau_s": 1.0, "theta": 1.0, "reset": 1.0, "n_max": 10}
    layers = [{**layer, "n": n, "init": {"kind": "uniform", "low": -1, "high": 1}} for n in sizes]
    return json.dumps(
        {"format": "batscope-network", "version": 1, "n_inputs": n_inputs, "layers": layers}
    )


def _npy_header(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def _bomb_npz(shape, zeros: int) -> bytes:
    """An .npz whose w0.npy inflates to ``zeros`` bytes from a tiny compressed file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("w0.npy", "w", force_zip64=True) as f:
            f.write(_npy_header(shape))
            chunk = bytes(2**20)
            for _ in range(zeros // len(chunk)):
                f.write(chunk)
    return buf.getvalue()


def parse_model(data, n_inputs=None):
    return read_model(data, n_inputs).build()


def _peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
    except ValueError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def test_huge_layer_model_is_refused_before_any_network_is_built(export, monkeypatch):
    data = _zip({"model.json": _model_json(4, (100_000,)), "model.npz": b"PK"})
    assert len(data) < 1000
    built = []
    monkeypatch.setattr(Network, "__init__", lambda *a, **k: built.append(a))
    before = run_config(export.controller.network, export.controller.training)
    assert _peak_mb(lambda: parse_model(data, 4)) < 2
    assert export.load_model(data) is False
    assert "size" in export.message.object and "at most 4096" in export.message.object
    assert built == []
    assert run_config(export.controller.network, export.controller.training) == before


def test_zip_bomb_weights_are_refused_from_their_headers(export):
    npz = _bomb_npz((2, 4), 64 * 2**20)  # 64 MiB of zeros behind a (2, 4) header
    data = _zip({"model.json": _model_json(), "model.npz": npz})
    assert len(data) < 2**20
    assert _peak_mb(lambda: parse_model(data, 4)) < 8
    assert export.load_model(data) is False
    assert "w0.npy: its zip header declares" in export.message.object
    assert export.controller.initial_weights is None


@pytest.mark.parametrize(
    ("member", "match"),
    [
        (_npy_header((3, 4)) + bytes(96), r"shape \(3, 4\), the network expects \(2, 4\)"),
        (_npy_header((2, 4), "|O") + bytes(64), "expected float32 or float64"),
        (_npy_header((2, 4), "<i8") + bytes(64), "expected float32 or float64"),
        (_npy_header((2, 4)) + bytes(100), "declares"),
    ],
)
def test_weight_headers_must_match_the_network(member, match):
    model = _model_json()
    with pytest.raises(ValueError, match=match):
        parse_model(_zip({"model.json": model, "model.npz": _zip({"w0.npy": member})}))
    two = _zip({"w0.npy": member, "w1.npy": member})
    with pytest.raises(ValueError, match="holds arrays"):
        parse_model(_zip({"model.json": model, "model.npz": two}))


def test_model_weights_total_is_bounded():
    data = _zip({"model.json": _model_json(4096, (4096, 4096)), "model.npz": b"PK"})
    with pytest.raises(ValueError, match=f"at most {MAX_WEIGHT_BYTES} bytes"):
        parse_model(data)


def test_model_round_trip_still_loads(export):
    net = export.controller.current_network()
    model = read_model(model_bytes(net), 4)
    assert model.build().config() == net.config() and [s.size for s in model.specs] == [2]


@pytest.mark.parametrize(
    "payload",
    [
        {"network": {"layers": [{"size": 2}]}, "training": {XSS: 1}},
        {"network": {"layers": [{"size": 2, "init": XSS}]}, "training": {}},
        {XSS: {}},
    ],
)
def test_xss_config_is_refused_with_an_escaped_message(export, payload):
    ctrl = export.controller
    before = run_config(ctrl.network, ctrl.training)
    assert export.load_config(json.dumps(payload).encode()) is False
    shown = export.message.object
    assert "<img" not in shown and "&lt;img" in shown
    assert run_config(ctrl.network, ctrl.training) == before


def test_xss_model_is_refused_with_an_escaped_message(export):
    cfg = json.loads(_model_json())
    cfg["layers"][0][XSS] = 1
    assert export.load_model(_zip({"model.json": json.dumps(cfg), "model.npz": b"x"})) is False
    assert "<img" not in export.message.object and "&lt;img" in export.message.object


def test_the_dropper_caps_what_the_server_buffers(export):
    from batscope.widgets.export import BoundedDropper

    dropper = export.config_upload
    assert isinstance(dropper, BoundedDropper) and dropper.max_file_size == "65KB"

    class Event:
        event_name = "upload_event"

        def __init__(self, chunk, total, data):
            self.data = {"name": XSS, "chunk": chunk, "total_chunks": total, "data": data,
                         "type": "application/json"}  # fmt: skip

    chunk = bytes(dropper.max_bytes // 2 + 1)
    dropper._process_event(Event(1, 3, chunk))
    dropper._process_event(Event(2, 3, chunk))  # over the limit: dropped
    assert dropper._file_buffer == {} and dropper.value == {}
    assert "Upload refused" in export.message.object and "<img" not in export.message.object
    dropper._process_event(Event(3, 3, chunk))  # the rest of it is ignored, no KeyError
    assert dropper.value == {}
