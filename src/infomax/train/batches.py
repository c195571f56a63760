"""Training batches: a seeded order per epoch, uint8 pixels in, normalized floats out."""

from __future__ import annotations

import numpy as np
import torch

from infomax.data.dataset import pixel_scale
from infomax.data.pixels import normalize_pixels
from infomax.train.augment import Augment


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The image order of one epoch: a permutation fixed by (seed, epoch).

    With several processes each rank takes every world_size-th entry, so the ranks see
    disjoint shards of the same permutation.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[rank::world_size]


class BatchSource:
    """Holds the uint8 images (N×C×H×W) and turns index lists into model-ready batches,
    augmented on the device when an Augment is given."""

    def __init__(self, images: np.ndarray, normalization: str, device: torch.device, channels_last: bool,
                 augment: Augment | None = None):
        self.images = torch.from_numpy(np.array(images))  # uint8 N×C×H×W, copied into memory (writable)
        if device.type == "cuda":
            self.images = self.images.to(device)  # 150 MB for CIFAR-10: cheaper than copying per batch
        pixel_scale(normalization)  # an unknown name fails here, before training starts
        self.normalization = normalization
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.augment = augment

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        x = self.images[index.to(self.images.device)]  # uint8 B×C×H×W
        x = normalize_pixels(x.to(self.device, non_blocking=True), self.normalization)
        return x.contiguous(memory_format=self.memory_format)

    def views(self, index: torch.Tensor, count: int, generator: torch.Generator) -> list[torch.Tensor]:
        """`count` batches of the same images: independently augmented views, or (without an
        Augment) the plain batch repeated."""
        if self.augment is None:
            return [self.batch(index)] * count
        x = self.images[index.to(self.images.device)].to(self.device, non_blocking=True)
        x = x.float().div_(255).contiguous(memory_format=self.memory_format)  # B×C×H×W in [0, 1]
        return [normalize_pixels(v, self.normalization, unit=True) for v in self.augment.views(x, count, generator)]
