"""Time-to-first-spike (TTFS) pixel encoding (docs/training.md §1).

Each pixel ``x`` in 0..255 emits one spike at ``t = t_enc * (1 - x / 255)`` seconds: 255 fires at
0, dimmer pixels later, and ``x = 0`` never fires (``+inf``, count 0).
"""

from __future__ import annotations

import numpy as np

T_ENC = 0.1  # seconds, the paper's T_enc


def ttfs_times(images, t_enc: float = T_ENC, dtype="float64") -> np.ndarray:
    """Spike times with the image's shape: ``t_enc * (1 - x / 255)``, ``+inf`` where ``x == 0``.

    The formula is evaluated in float64 and then cast to ``dtype``.
    """
    x = np.asarray(images)
    if x.dtype.kind not in "uif":
        raise TypeError(f"images must be numeric, got dtype {x.dtype}")
    if not np.isfinite(t_enc) or t_enc <= 0:
        raise ValueError(f"t_enc must be a positive number of seconds, got {t_enc}")
    xf = x.astype(np.float64)
    if x.size and (np.isnan(xf).any() or xf.min() < 0 or xf.max() > 255):
        raise ValueError("pixel values must lie in [0, 255]")
    t = float(t_enc) * (1.0 - xf / 255.0)
    t[xf == 0] = np.inf
    return t.astype(np.dtype(dtype), copy=False)


def encode_ttfs(images, t_enc: float = T_ENC, flatten: bool = True, dtype="float64"):
    """Encode a batch of images as engine ``SpikeTrains`` with one slot per input neuron.

    ``images``: ``[B, H, W]``, ``[B, H, W, C]`` or already flat ``[B, N]``, values 0..255 (uint8
    or numbers). Neurons are the pixels in C order: neuron ``r * W + c`` for ``[B, H, W]`` and
    ``(r * W + c) * C + ch`` for ``[B, H, W, C]``, so ``spikes.times.reshape(B, H, W, C, 1)`` gives
    the image layout back for convolutional layers (the paper's ``(28, 28, 1)`` input).

    Returns ``SpikeTrains`` (times ``[B, N, 1]``, counts ``[B, N]`` int32) if ``flatten`` is
    true, else the tuple ``(SpikeTrains, (H, W, C))`` with ``C = 1`` for ``[B, H, W]`` input.
    """
    from batscope.engine.spikes import SpikeTrains

    x = np.asarray(images)
    if x.ndim < 2:
        raise ValueError(f"images need a batch axis: shape [B, ...], got {x.shape}")
    b = x.shape[0]
    t = ttfs_times(x, t_enc, dtype).reshape(b, -1, 1)
    counts = np.isfinite(t[..., 0]).astype(np.int32)
    spikes = SpikeTrains(np.ascontiguousarray(t), counts)
    if flatten:
        return spikes
    shape = x.shape[1:]
    if len(shape) == 2:
        shape = (*shape, 1)
    elif len(shape) == 1:
        shape = (shape[0], 1, 1)
    return spikes, tuple(int(s) for s in shape)
