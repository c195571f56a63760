"""The images of a data source, one split and one chunk at a time, so memory stays bounded.

    source = open_source("folder:photos/", size=64)
    for chunk in source.chunks("train"):     # Chunk: uint8 K×C×H×W, labels K or None, ids K
        ...

Folder and Tiny ImageNet specs are decoded straight from their files a chunk at a time (no
decoded cache is written); other specs are loaded through the decoded cache, whose arrays are
memory-mapped; images in memory (arrays, tensors, a Dataset) are sliced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from infomax.data.arrays import adapt
from infomax.data.dataset import Dataset
from infomax.errors import InfomaxError

CHUNK_BYTES = 1 << 27  # about 128 MB of decoded pixels per chunk
CHUNK_MIN, CHUNK_MAX = 64, 4096


@dataclass
class Chunk:
    images: np.ndarray  # uint8 K×C×H×W
    labels: np.ndarray | None  # int64 K; None when unlabelled
    ids: list[str]  # source id per image


@dataclass
class Source:
    """Where the images come from; `chunks(split)` yields them in order."""

    splits: dict[str, int]  # split -> number of images listed (decoding may skip some)
    class_names: list[str] | None
    normalization: str
    spec: str  # the data spec, or "memory"
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source id, reason)

    def chunks(self, split: str) -> Iterator[Chunk]:  # pragma: no cover - overridden
        raise NotImplementedError


def chunk_length(channels: int, size: int | None) -> int:
    """Images per chunk: about CHUNK_BYTES of pixels (1024 when the size is not known yet)."""
    if size is None:
        return 1024
    return int(np.clip(CHUNK_BYTES // (channels * size * size), CHUNK_MIN, CHUNK_MAX))


def open_source(source, *, size: int | None = None, progress: bool = True) -> Source:
    """A Source for a spec string, a Dataset, or images in memory (see infomax.load_data)."""
    if isinstance(source, (str, Path)):
        from infomax.data.loader import TREE_KINDS
        from infomax.data.spec import STREAM_KINDS, parse_spec

        parsed = parse_spec(str(source))
        if parsed.kind in STREAM_KINDS:
            raise InfomaxError(f"'{source}' is already shards; give the data set they were written from")
        if parsed.kind in TREE_KINDS:
            return TreeSource(parsed, size, progress)
        from infomax.data import load

        return ArraySource(load(str(source), progress=progress), size)
    from infomax.data.memory import as_dataset

    return ArraySource(as_dataset(source), size)


class ArraySource(Source):
    """The splits of a Dataset (memory-mapped when loaded from the cache), resized when asked."""

    def __init__(self, dataset: Dataset, size: int | None):
        super().__init__({name: len(s) for name, s in dataset.splits.items()}, dataset.class_names,
                         dataset.normalization, dataset.spec or "memory", list(dataset.skipped))
        self.dataset, self.size = dataset, size
        self.resize = dataset.options.get("resize", "shorter-crop")

    def chunks(self, split: str) -> Iterator[Chunk]:
        data = self.dataset.split(split)
        step = chunk_length(data.images.shape[1], max(data.images.shape[2:]))
        for start in range(0, len(data), step):
            images = np.asarray(data.images[start : start + step])  # K×C×H×W, read from the map
            images = adapt(images, size=self.size, mode=None, resize=self.resize)  # as is without a size
            labels = None if data.labels is None else np.asarray(data.labels[start : start + step], np.int64)
            yield Chunk(images, labels, data.ids[start : start + step])


class TreeSource(Source):
    """A folder or zip of image files, decoded a chunk at a time (in parallel for large chunks)."""

    def __init__(self, parsed, size: int | None, progress: bool):
        from infomax.data import cache_home
        from infomax.data.locate import locate
        from infomax.data.sources import cached_tree

        path = locate(parsed, root=cache_home(), download=False, progress=progress)
        self.tree = cached_tree(path)
        if parsed.kind == "folder":
            from infomax.data.readers.folder import plan_tree

            self.plan = plan_tree(self.tree, str(path))
        else:
            from infomax.data.readers.tiny_imagenet import plan_tiny_imagenet

            self.plan = plan_tiny_imagenet(self.tree)
        from infomax.data.spec import KINDS

        options = parsed.options
        self.size = size if size is not None else options.get("size")
        self.mode, self.resize = options.get("mode", "RGB"), options.get("resize", "shorter-crop")
        self.shape: tuple[int, ...] | None = None  # fixed by the first image when no size is given
        norm = options.get("norm") or KINDS[parsed.kind].normalization
        super().__init__({name: len(p.names) for name, p in self.plan.splits.items()}, self.plan.class_names,
                         norm, parsed.text, list(self.plan.skipped))

    def chunks(self, split: str) -> Iterator[Chunk]:
        from infomax.data.parallel import decode_names

        plan = self.plan.splits[split]
        step = chunk_length(1 if self.mode == "L" else 3, self.size)
        for start in range(0, len(plan.names), step):
            names = plan.names[start : start + step]
            decoded = decode_names(str(self.tree.path), names, size=self.size, mode=self.mode,
                                   resize=self.resize, progress=False)
            self.skipped += decoded.failed
            if len(decoded.kept) == 0:
                continue
            shape = decoded.images.shape[1:]
            if self.shape is None:
                self.shape = shape
            elif shape != self.shape:
                raise InfomaxError(f"images in {self.tree.path} have different sizes ({self.shape[2]}×{self.shape[1]} "
                                   f"and {shape[2]}×{shape[1]}); choose one output size with --size or ,size=N")
            labels = None if plan.labels is None else np.asarray(plan.labels, np.int64)[start + decoded.kept]
            yield Chunk(decoded.images, labels, [names[k] for k in decoded.kept])
