"""Pixels as the model reads them: uint8 values turned into floats by the data set's normalization.

Training batches, the embedder and the raw-pixel baseline all go through `normalize_pixels`, so
a model always sees at embedding time exactly the numbers it was trained on.
"""

from __future__ import annotations

import torch

from infomax.data.dataset import pixel_scale
from infomax.errors import InfomaxError


def normalize_pixels(x: torch.Tensor, normalization: str, *, unit: bool = False) -> torch.Tensor:
    """x * scale + offset of the named normalization (`NORMALIZATIONS`), as a new float32 tensor.

    x: uint8 pixels 0..255 of any shape (e.g. B×C×H×W), on any device; or, with unit=True,
    floats in [0, 1] (pixels / 255, e.g. augmented views), scaled by 255·scale instead.
    x itself is never changed: the arithmetic runs in place on the new tensor.
    """
    scale, offset = pixel_scale(normalization)
    if unit:
        if not x.is_floating_point():
            raise InfomaxError(f"normalize_pixels(unit=True) takes floats in [0, 1], got {x.dtype}")
        return (x.float() * (255 * scale)).add_(offset)
    if x.dtype != torch.uint8:
        raise InfomaxError(f"normalize_pixels takes uint8 pixels (0..255), got {x.dtype}; "
                           "pass unit=True for floats in [0, 1]")
    return x.float().mul_(scale).add_(offset)
