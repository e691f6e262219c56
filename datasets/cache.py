"""Where downloaded and user-supplied dataset files are kept: ``$BATSCOPE_DATA`` or
``~/.cache/batscope``."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "BATSCOPE_DATA"


def cache_dir() -> Path:
    """The cache root: ``$BATSCOPE_DATA`` or ``~/.cache/batscope`` (read at every call)."""
    value = os.environ.get(ENV_VAR)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "batscope"
