"""Training batches: a seeded order per epoch, uint8 pixels in, normalized floats out."""

from __future__ import annotations

import numpy as np
import torch

from infomax.data.dataset import NORMALIZATIONS


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The image order of one epoch: a permutation fixed by (seed, epoch).

    With several processes each rank takes every world_size-th entry, so the ranks see
    disjoint shards of the same permutation.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[rank::world_size]


class BatchSource:
    """Holds the uint8 images (N×C×H×W) and turns index lists into model-ready batches."""

    def __init__(self, images: np.ndarray, normalization: str, device: torch.device, channels_last: bool):
        self.images = torch.from_numpy(np.array(images))  # uint8 N×C×H×W, copied into memory (writable)
        if device.type == "cuda":
            self.images = self.images.to(device)  # 150 MB for CIFAR-10: cheaper than copying per batch
        self.scale, self.offset = NORMALIZATIONS[normalization]
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        x = self.images[index.to(self.images.device)]  # uint8 B×C×H×W
        x = x.to(self.device, non_blocking=True).float().mul_(self.scale).add_(self.offset)
        return x.contiguous(memory_format=self.memory_format)
