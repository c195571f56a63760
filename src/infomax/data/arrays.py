"""Resize and convert whole uint8 N×C×H×W arrays (for readers whose files hold raw pixels)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from infomax.data.decode import fit, to_mode


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
