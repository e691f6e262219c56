"""Limits on untrusted input that ``param`` cannot express, and the one config check.

Every value that enters the app (builder widget, URL, uploaded config or model, CLI) is
checked against the schema declared in ``training/state.py`` (bounds, finite floats, layer count,
total neurons, sweep runs). This module adds the limits on the *form* of untrusted input (byte
sizes, JSON depth, URL length) and :func:`validate_config`, the entry point that URL and
uploads share: a candidate is validated whole before anything is applied, so a refused value
changes nothing. :func:`escape` makes user content safe to echo in a Markdown or HTML pane.
"""

from __future__ import annotations

import html
import re

from batscope.engine.io import parse_json as engine_parse_json

from .state import check_total_neurons, run_config, scratch_config

MAX_JSON_DEPTH = 10  # nesting of objects and arrays (a model config needs 4)
MAX_CONFIG_BYTES = 64 * 2**10  # an uploaded run config, or the .json inside a model
MAX_MODEL_BYTES = 48 * 2**20  # an uploaded model zip, as sent
MAX_WEIGHT_BYTES = 64 * 2**20  # the weights a model may hold, decompressed
MAX_QUERY_CHARS = 1000  # the whole URL query string
MAX_URL_VALUE_CHARS = 100  # one URL query value
MAX_ECHO_CHARS = 80  # user content quoted back in a message


def parse_json(data, what: str, max_bytes: int = MAX_CONFIG_BYTES):
    """JSON from untrusted bytes: size and UTF-8 checked first, then the engine's parser
    (nesting depth checked on the text before parsing, finite numbers only)."""
    if not isinstance(data, (bytes, bytearray, str)) or not data:
        raise ValueError(f"{what}: the file is empty")
    if len(data) > max_bytes:
        raise ValueError(f"{what}: {len(data)} bytes; at most {max_bytes} bytes are allowed")
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{what}: not UTF-8 text") from None
    try:
        return engine_parse_json(text, MAX_JSON_DEPTH)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def check_depth(obj, what: str, limit: int = MAX_JSON_DEPTH) -> None:
    """The same limit for an already-parsed object (a config passed from Python)."""
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                raise ValueError(f"{what}: nested deeper than {limit} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in children)


def validate_config(d) -> dict:
    """The run configuration ``d`` checked against the whole schema, normalised.

    Raises ``ValueError`` naming the field and the bound (``network.layers[0].size: ... at
    most 4096 ...``); returns the dict :func:`batscope.training.state.run_config` would write,
    with defaults filled in. Nothing is applied: pass the result to
    :func:`batscope.training.state.apply_run_config`.
    """
    check_depth(d, "config")
    network, training = scratch_config(d)
    check_total_neurons(network.sizes)
    return run_config(network, training)


def escape(value, limit: int = MAX_ECHO_CHARS) -> str:
    """``value`` as text safe inside a Markdown/HTML pane: shortened, HTML and Markdown inert.

    One line (no line-start Markdown: lists, headings), the inline Markdown markers escaped,
    then every HTML special character made an entity, so no tag or link survives.
    """
    text = " ".join(str(value).split())
    if len(text) > limit:
        text = text[:limit] + "…"
    text = re.sub(r"([\\`*_\[\]$~|])", r"\\\1", text)
    return html.escape(text, quote=True)
