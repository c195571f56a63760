"""Resize and convert whole uint8 N×C×H×W arrays (for readers whose files hold raw pixels)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from infomax.data.decode import fit, to_mode
from infomax.data.store import Store

BLOCK = 1024  # images adapted and written per step by adapt_into


def adapt(images: np.ndarray, *, size: int | None, mode: str | None, resize: str = "shorter-crop") -> np.ndarray:
    """Return images (uint8 N×C×H×W, C = 1 or 3) as N×C'×size×size in `mode` ('RGB', 'L' or None = as is)."""
    n, channels, height, width = images.shape
    want = channels if mode is None else (1 if mode == "L" else 3)
    if (size is None or (height == width == size)) and want == channels:
        return images
    target = mode or ("L" if channels == 1 else "RGB")
    out_h, out_w = (height, width) if size is None else (size, size)
    out = np.empty((n, want, out_h, out_w), np.uint8)
    for i in range(n):
        pixels = images[i, 0] if channels == 1 else images[i].transpose(1, 2, 0)  # H×W or H×W×3
        image = to_mode(Image.fromarray(np.ascontiguousarray(pixels), "L" if channels == 1 else "RGB"), target)
        if size is not None:
            image = fit(image, size, resize)
        result = np.asarray(image)
        out[i] = result[None] if result.ndim == 2 else result.transpose(2, 0, 1)
    return out


def channel_mode(images: np.ndarray) -> str:
    """'L' for 1-channel arrays, 'RGB' for 3."""
    return "L" if images.shape[1] == 1 else "RGB"


def adapt_into(store: Store | None, split: str, images: np.ndarray, *, size: int | None, mode: str | None,
               resize: str = "shorter-crop") -> np.ndarray:
    """adapt() block by block into the store's rows for `split` (default: memory); returns the
    finished N×C'×size×size array, so a resized copy of a whole split is never held in memory."""
    store = store or Store(None)
    first = adapt(images[:1], size=size, mode=mode, resize=resize)  # 1×C'×H'×W': the output shape
    if len(images) == 0:
        return np.empty((0, *first.shape[1:]), np.uint8)
    rows = store.rows(split, first.shape[1:], len(images))
    try:
        for start in range(0, len(images), BLOCK):
            rows.append(adapt(images[start : start + BLOCK], size=size, mode=mode, resize=resize))
        return rows.finish()
    finally:
        rows.close()
