"""Multi-crop (SwAV, Caron et al. 2020, sec. 3.2): besides the full-size views, M small crops of
each image at a lower resolution. A small crop covers a fraction of the image's area drawn from
SMALL_AREA and is resized to a side of `size` pixels (half the image's by default), so it costs
the encoder about a quarter of a full view. The objective scores each small crop's code against
every full view's code (global MI) and every full view's local map (local MI): a part of the
image must tell which whole image, and which of its positions, it came from.

    x      N×C×H×W in [0, 1]
    crops  M·N×C×s×s, crop-major (rows m·N … m·N + N − 1 are the m-th crop of every image)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from infomax.errors import InfomaxError
from infomax.train.augment import Augment, _layout, resized_crop_thetas

SMALL_AREA = (0.1, 0.5)  # the fraction of the image's area a small crop covers, uniform in this range
SMALLEST_SIDE = 8  # a small crop is never resized below this many pixels a side


def small_side(image_side: int, size: int = 0) -> int:
    """The side of the small crops: `size`, or half the image's side (0), at least SMALLEST_SIDE."""
    side = size or max(SMALLEST_SIDE, image_side // 2)
    if not SMALLEST_SIDE <= side < image_side:
        raise InfomaxError(f"small crops of {side} px on {image_side}-px images: choose a small crop size "
                           f"from {SMALLEST_SIDE} to {image_side - 1} (0: half the image's side)")
    return side


def small_crops(x: torch.Tensor, count: int, side: int, augment: Augment, generator: torch.Generator) -> torch.Tensor:
    """`count` small crops of every image of x (N×C×H×W, [0, 1]): M·N×C×side×side, crop-major.
    Each is a random box of SMALL_AREA of the image (aspect 3/4–4/3, as resized_crop_thetas),
    resized bilinearly to side×side, then flipped, jittered and grayed as `augment` says."""
    n, c = x.shape[:2]
    theta = resized_crop_thetas(count * n, SMALL_AREA[0], generator, x, scale_max=SMALL_AREA[1])  # M·N×2×3
    grid = F.affine_grid(theta, [count * n, c, side, side], align_corners=False)  # M·N×s×s×2
    source = x.repeat(count, 1, 1, 1)  # M·N×C×H×W, crop-major
    crops = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp(0, 1)
    return augment.appearance(crops.contiguous(memory_format=_layout(x)), generator)


@dataclass(frozen=True)
class MultiCrop:
    """`count` small crops of `side` pixels per image (see small_crops)."""

    count: int
    side: int

    @classmethod
    def of(cls, count: int, size: int, image_side: int) -> MultiCrop | None:
        """The config's data.small_crops and data.small_crop_size for images of image_side; None for none."""
        return cls(count, small_side(image_side, size)) if count > 0 else None

    def __call__(self, x: torch.Tensor, augment: Augment, generator: torch.Generator) -> torch.Tensor:
        return small_crops(x, self.count, self.side, augment, generator)  # M·N×C×s×s
