"""Training batches: a seeded order per epoch, uint8 pixels in, normalized floats out.

Images that fit comfortably (under IN_MEMORY_FRACTION of the memory available: host memory, or
the GPU's free memory on CUDA) are copied once, into memory or onto the GPU. Larger ones stay
where they are (usually the read-only memory map of the decoded-array cache) and each batch's
rows are gathered from there; the pages read are unmapped every RELEASE_BYTES, so the process's
resident memory does not grow with the data set (the page cache keeps what fits).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from infomax.data.dataset import pixel_scale
from infomax.data.pixels import normalize_pixels
from infomax.data.store import RELEASE_BYTES, release_pages
from infomax.train.augment import Augment, resize
from infomax.train.multicrop import MultiCrop

IN_MEMORY_FRACTION = 0.25  # copy the images when they take at most this share of the available memory


def epoch_order(n: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """The image order of one epoch: a permutation fixed by (seed, epoch).

    With several processes each rank takes every world_size-th entry, so the ranks see
    disjoint shards of the same permutation.
    """
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[rank::world_size]


def available_memory(device: torch.device) -> int:
    """Bytes the images may take on `device`: the GPU's free memory on CUDA, else the host's
    available memory (MemAvailable; free pages where there is no /proc/meminfo)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0  # unknown: gather from where the images are


class BatchSource:
    """Holds the uint8 images (N×C×H×W) and turns index lists into model-ready batches,
    augmented on the device when an Augment is given.

    in_memory: copy the images (into memory, or onto a CUDA device); None decides by size
    (IN_MEMORY_FRACTION of `available_memory`). False gathers each batch from `images` as given.
    """

    def __init__(self, images: np.ndarray, normalization: str, device: torch.device, channels_last: bool,
                 augment: Augment | None = None, *, in_memory: bool | None = None, crops: MultiCrop | None = None,
                 side: int = 0):
        pixel_scale(normalization)  # an unknown name fails here, before training starts
        if in_memory is None:
            in_memory = images.nbytes <= IN_MEMORY_FRACTION * available_memory(device)
        self.in_memory = in_memory
        self.images: torch.Tensor | None = None  # uint8 N×C×H×W on a CUDA device, when copied there
        self.host: np.ndarray | None = None  # uint8 N×C×H×W to gather from on the host: a copy, or as given
        if in_memory and device.type == "cuda":
            self.images = _to_device(images, device)  # 150 MB for CIFAR-10: cheaper than copying per batch
        elif in_memory:
            self.host = np.array(images)  # copied into memory
        else:
            self.host = images  # usually the cache's read-only memory map
        self.length = int(images.shape[0])
        self.normalization = normalization
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.augment, self.crops, self.side = augment, crops, side
        self._read = 0  # bytes gathered from a memory map since its pages were last released

    def __len__(self) -> int:
        return self.length

    def pixels(self, index: torch.Tensor) -> torch.Tensor:
        """The uint8 B×C×H×W rows `index` (in that order), on the device."""
        if self.images is not None:
            return self.images[index.to(self.images.device)]
        rows = np.asarray(np.take(self.host, index.cpu().numpy(), axis=0))  # B×C×H×W, a new array
        if not self.in_memory:
            self._read += rows.nbytes
            if self._read >= RELEASE_BYTES:
                release_pages(self.host)
                self._read = 0
        return torch.from_numpy(rows).to(self.device, non_blocking=True)

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        return plain_batch(self.pixels(index), self.normalization, self.memory_format)

    def views(self, index: torch.Tensor, count: int, generator: torch.Generator) -> list[torch.Tensor]:
        """`count` batches of the same images: independently augmented views, or (without an
        Augment) the plain batch repeated; then the small crops, when there are any."""
        return pixel_views(self.pixels(index), count, generator, self.augment, self.normalization, self.memory_format,
                           self.crops, self.side)


def plain_batch(x: torch.Tensor, normalization: str, memory_format: torch.memory_format) -> torch.Tensor:
    """The uint8 batch x (B×C×H×W, on the device) normalized, in the model's memory format."""
    return normalize_pixels(x, normalization).contiguous(memory_format=memory_format)


def pixel_views(x: torch.Tensor, count: int, generator: torch.Generator, augment: Augment | None,
                normalization: str, memory_format: torch.memory_format,
                crops: MultiCrop | None = None, side: int = 0) -> list[torch.Tensor]:
    """`count` views of the uint8 batch x (B×C×H×W, on the device), each B×C×side×side (0: H×W,
    model.train_size): augmented independently, or (without an Augment) the plain normalized
    batch repeated; with `crops`, one more entry: the small crops, M·B×C×s×s (train/multicrop.py).

    The augmentation runs on plain contiguous batches, each view taking the model's memory format
    once it is normalized: on the CPU its reductions over channels (luma, the jitter's mean gray)
    and elementwise stages are slower on channels_last batches, and the whole takes about 0.75 of
    the time there (benchmarks/bench_augment.py), with the same values."""
    if augment is None and side in (0, x.shape[-1]):
        return [plain_batch(x, normalization, memory_format)] * count
    x = x.float().div_(255).contiguous()  # B×C×H×W in [0, 1]
    if augment is None:
        shrunk = normalize_pixels(resize(x, side), normalization, unit=True)  # B×C×side×side
        return [shrunk.contiguous(memory_format=memory_format)] * count
    views = augment.views(x, count, generator, side) + ([crops(x, augment, generator)] if crops else [])
    return [normalize_pixels(v, normalization, unit=True).contiguous(memory_format=memory_format) for v in views]


def _to_device(images: np.ndarray, device: torch.device, rows: int = 8192) -> torch.Tensor:
    """uint8 N×C×H×W copied onto `device` in blocks (no full copy in host memory on the way)."""
    out = torch.empty(tuple(images.shape), dtype=torch.uint8, device=device)
    for start in range(0, len(images), rows):
        out[start : start + rows] = torch.from_numpy(np.array(images[start : start + rows]))
    release_pages(images)
    return out
