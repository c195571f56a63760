"""What the training loop reads its batches from: arrays (a decoded data set, in memory or
memory-mapped) or a stream of WebDataset shards. Both give this rank's views of each step's
images, a fixed number of steps per epoch, and a place to resume inside an epoch.

    feed = feed_for(data, cfg, ranks, device, channels_last)
    feed.start(epoch, skip)                 # at an epoch's start, or mid-epoch after a resume
    views = feed.views(count, generator)    # this rank's next batch: count views, normalized floats
                                            # (and the small crops last, with multi-crop)
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from infomax.errors import InfomaxError
from infomax.train.augment import Augment, parse_augment
from infomax.train.batches import BatchSource, epoch_order, pixel_views, plain_batch
from infomax.train.distributed import Ranks, per_rank_batch
from infomax.train.multicrop import MultiCrop


class ArrayFeed:
    """Batches of a decoded split: epoch e visits a permutation fixed by (seed, e), each rank
    every world_size-th entry of it."""

    def __init__(self, source: BatchSource, seed: int, ranks: Ranks, batch_size: int):
        self.source, self.seed, self.ranks = source, seed, ranks
        self.batch = per_rank_batch(batch_size, ranks)
        self.steps_per_epoch = len(source) // batch_size
        self.order, self.pos = None, 0

    def start(self, epoch: int, skip: int = 0) -> None:
        self.order = epoch_order(len(self.source), self.seed, epoch, self.ranks.rank, self.ranks.world_size)
        self.pos = skip

    def views(self, count: int, generator: torch.Generator) -> list[Tensor]:
        index = self.order[self.pos * self.batch : (self.pos + 1) * self.batch]
        self.pos += 1
        return self.source.views(index, count, generator)

    def plain_batches(self, images: int, batch_size: int = 256) -> Iterator[Tensor]:
        """Un-augmented batches of a seeded sample of `images` train images, this rank's share
        (for re-estimating BatchNorm statistics)."""
        index = torch.randperm(len(self.source), generator=torch.Generator().manual_seed(self.seed))[:images]
        share = len(index) // self.ranks.world_size
        index = index[self.ranks.rank * share : (self.ranks.rank + 1) * share]
        step = batch_size // self.ranks.world_size
        for start in range(0, len(index), step):
            yield self.source.batch(index[start : start + step])


class StreamFeed:
    """Batches of a Stream of tar shards (infomax.data.stream): each rank reads its own shards;
    (seed, epoch, rank, world_size, workers) fixes the sequence, so a resumed epoch skips the
    batches it had already trained on (reading them again)."""

    def __init__(self, stream, seed: int, ranks: Ranks, batch_size: int, workers: int, augment: Augment | None,
                 device: torch.device, memory_format: torch.memory_format, crops: MultiCrop | None = None,
                 side: int = 0):
        self.stream, self.seed, self.ranks, self.workers, self.side = stream, seed, ranks, workers, side
        self.batch = per_rank_batch(batch_size, ranks)
        self.steps_per_epoch = stream.steps_per_epoch(self.batch, ranks.rank, ranks.world_size, workers)
        self.augment, self.device, self.memory_format, self.crops = augment, device, memory_format, crops
        self.it: Iterator | None = None

    def _batches(self, epoch: int, skip: int) -> Iterator:
        return iter(self.stream.batches(epoch=epoch, seed=self.seed, batch_size=self.batch, rank=self.ranks.rank,
                                        world_size=self.ranks.world_size, workers=self.workers, skip=skip))

    def start(self, epoch: int, skip: int = 0) -> None:
        self.it = self._batches(epoch, skip)

    def views(self, count: int, generator: torch.Generator) -> list[Tensor]:
        images, _, _ = next(self.it)
        x = images.to(self.device, non_blocking=True)  # uint8 B×C×H×W
        return pixel_views(x, count, generator, self.augment, self.stream.normalization, self.memory_format,
                           self.crops, self.side)

    def plain_batches(self, images: int, batch_size: int = 256) -> Iterator[Tensor]:
        """Un-augmented batches of about `images` images (the first of epoch 0's order), this rank's share."""
        wanted = images // self.ranks.world_size
        for x, _, _ in self._batches(0, 0):
            if wanted <= 0:
                return
            x = x[:wanted].to(self.device)
            wanted -= len(x)
            yield plain_batch(x, self.stream.normalization, self.memory_format)


def is_stream(data) -> bool:
    """True for a Stream of shards (it yields batches), False for a decoded Dataset."""
    return hasattr(data, "batches") and hasattr(data, "steps_per_epoch")


def augment_for(cfg, image_shape: tuple[int, int, int]) -> Augment | None:
    """The recipe cfg.data.augment names for images of image_shape (C, H, W) trained on views
    cfg.model.train_size pixels a side (0: H): what `default` is for them (Augment.default_for)."""
    c, h, _ = image_shape
    return parse_augment(cfg.data.augment, (c, h, h), cfg.model.train_size)


def feed_for(data, cfg, ranks: Ranks, device: torch.device, channels_last: bool):
    """The feed of a Dataset's train split (ArrayFeed) or of a Stream (StreamFeed)."""
    side = cfg.model.train_size  # the views' side (0: the images')
    h = data.image_shape[1]
    optim, augment = cfg.optim, augment_for(cfg, data.image_shape)
    crops = MultiCrop.of(cfg.data.small_crops, cfg.data.small_crop_size, side or h)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if is_stream(data):
        return StreamFeed(data, cfg.run.seed, ranks, optim.batch_size, cfg.data.workers, augment, device, memory_format,
                          crops, side)
    split = data.split(data.train_split)  # test/val images are never seen here
    if len(split) < optim.batch_size:
        raise InfomaxError(f"the train split has {len(split)} images, fewer than one batch of {optim.batch_size}; "
                           "lower --batch-size")
    source = BatchSource(split.images, data.normalization, device, channels_last, augment, crops=crops, side=side)
    return ArrayFeed(source, cfg.run.seed, ranks, optim.batch_size)
