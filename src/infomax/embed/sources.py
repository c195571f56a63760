"""What `infomax embed` reads, cut into parts: an array data set (parts of a fixed row count,
each rank a contiguous range of them) or a `webdataset:` stream (one part per tar shard, rank r
taking shards r, r + W, r + 2W, ... as the stream's own split does)."""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import numpy as np

from infomax.data.dataset import Dataset, Split
from infomax.extras import require

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd


def split_metadata(name: str, split: Split, class_names: list[str] | None) -> pd.DataFrame:
    """The metadata rows of one split: id, split, label (nullable), label_name ("" when unknown)."""
    pd = require("pandas", "eval", "the embeddings' metadata table")
    n = len(split)
    if split.labels is not None:
        labels = pd.array(np.asarray(split.labels, dtype=np.int64), dtype="Int64")
        label_name = [class_names[int(l)] for l in split.labels] if class_names else [""] * n
    else:
        labels, label_name = pd.array([pd.NA] * n, dtype="Int64"), [""] * n
    return pd.DataFrame({"id": list(split.ids), "split": name, "label": labels, "label_name": label_name})


def my_parts(num_parts: int, rank: int, world_size: int) -> range:
    """The contiguous range of parts one rank embeds (the last ranks take one more when uneven)."""
    return range(rank * num_parts // world_size, (rank + 1) * num_parts // world_size)


class ArraySource:
    """A decoded data set: its splits one after the other (train first), parts of part_size rows."""

    def __init__(self, dataset: Dataset, part_size: int):
        self.dataset, self.part_size = dataset, part_size
        self.rows = dataset.num_images
        self.num_parts = max(1, math.ceil(self.rows / part_size))
        self.class_names = dataset.class_names
        self.image_shapes = {tuple(int(d) for d in s.images.shape[1:]) for s in dataset.splits.values()}
        self.splits, start = {}, 0
        for name, split in dataset.splits.items():
            self.splits[name] = [start, start + len(split)]
            start += len(split)

    def parts_of(self, rank: int, world_size: int) -> range:
        return my_parts(self.num_parts, rank, world_size)

    def read(self, k: int) -> tuple[np.ndarray, pd.DataFrame]:
        """Images (uint8 n×C×H×W) and metadata of part k."""
        pd = require("pandas", "eval", "the embeddings' metadata table")
        start, stop = k * self.part_size, min((k + 1) * self.part_size, self.rows)
        images, frames = [], []
        for name, split in self.dataset.splits.items():
            offset = self.splits[name][0]
            a, b = max(start - offset, 0), min(stop - offset, len(split))
            if a < b:
                images.append(split.images[a:b])
                part = Split(split.images[a:b], None if split.labels is None else split.labels[a:b], split.ids[a:b])
                frames.append(split_metadata(name, part, self.class_names))
        if not images:
            return np.zeros((0, *self.dataset.image_shape), np.uint8), split_metadata("", Split(np.zeros(0), None, []), None)
        return (images[0] if len(images) == 1 else np.concatenate(images)), pd.concat(frames, ignore_index=True)


class StreamSource:
    """A webdataset: stream: part k = shard k, its samples in tar order (unreadable ones skipped
    and reported), ids = the samples' keys, split "train" (the split a stream reads)."""

    split = "train"

    def __init__(self, stream):
        self.stream, self.part_size = stream, None
        self.rows, self.num_parts = stream.num_samples, stream.num_shards
        self.class_names = stream.class_names
        self.image_shapes = {tuple(stream.image_shape)}
        self.splits = {self.split: [0, self.rows]}

    def parts_of(self, rank: int, world_size: int) -> range:
        return range(rank, self.num_parts, world_size)

    def read(self, k: int) -> tuple[np.ndarray, pd.DataFrame]:
        from infomax.data.stream_pipeline import ShardSamples

        s = self.stream
        reader = ShardSamples([s.urls[k]], s.image_shape, s.labelled, s.resize, buffer=1, seeds=(0,))  # no shuffle
        images, labels, keys = [], [], []
        for pixels, label, ids, failures in reader:
            images.append(pixels.numpy())
            labels.append(None if label is None else label.numpy())
            keys += ids
            for url, key, reason in failures:
                print(f"infomax: skipped {key or '?'} in {url}: {reason}", file=sys.stderr)
        x = np.concatenate(images) if images else np.zeros((0, *s.image_shape), np.uint8)
        y = np.concatenate(labels) if s.labelled and labels else None
        return x, split_metadata(self.split, Split(x, y, keys), self.class_names)
