"""A `webdataset:` data spec read as a stream of uint8 batches, for data sets too large for arrays.

    stream = open_stream("webdataset:shards/train")             # a folder with shards.json
    stream = open_stream("webdataset:shards/train/shard-{000000..000009}.tar,size=64")
    stream.num_samples, stream.image_shape, stream.class_names, stream.normalization
    steps = stream.steps_per_epoch(256, rank, world_size, workers)
    for images, labels, ids in stream.batches(epoch=e, seed=s, batch_size=256, rank=r,
                                              world_size=w, workers=4, skip=0):
        ...   # images: torch uint8 B×C×H×W, labels: int64 B (None unlabelled), ids: list of keys

Each epoch the shards are put in a seeded order; shard i of it goes to rank i % world_size, and
the rank's j-th shard to DataLoader worker j % workers, which shuffles its samples through a
seeded buffer and decodes them. So (seed, epoch, rank, world_size, workers) fixes the sequence.
A folder holding the shards.json of several splits streams its train split.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from infomax.errors import InfomaxError

MANIFEST = "shards.json"


class Stream:
    """Tar shards of one split, with their sample counts and what the images are."""

    kind = "webdataset"  # as Dataset.kind: the reader's name

    def __init__(self, urls: list[str], counts: list[int], image_shape: tuple[int, int, int],
                 class_names: list[str] | None, labelled: bool, normalization: str, spec: str,
                 resize: str = "shorter-crop", shuffle_buffer: int = 2000):
        self.urls, self.counts = urls, counts  # shard paths, samples per shard
        self.image_shape = image_shape  # (C, H, W) of every batch
        self.class_names, self.labelled = class_names, labelled
        self.normalization, self.spec, self.resize = normalization, spec, resize
        self.shuffle_buffer = shuffle_buffer  # samples (still encoded) each worker shuffles among
        self.skipped: list[tuple[str, str, str]] = []  # (shard, key, reason) of members not decoded
        self.skipped_keys: set[tuple[str, str]] = set()  # each reported once

    @property
    def num_samples(self) -> int:
        return sum(self.counts)

    @property
    def train_images(self) -> int:
        """The images training reads, as Dataset.train_images: every sample."""
        return self.num_samples

    @property
    def options(self) -> dict:
        """The resolved reading options, as Dataset.options."""
        return {"size": self.image_shape[1], "resize": self.resize, "shuffle_buffer": self.shuffle_buffer}

    @property
    def num_shards(self) -> int:
        return len(self.urls)

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    def steps_per_epoch(self, batch_size_per_rank: int, rank: int = 0, world_size: int = 1, workers: int = 0) -> int:
        """Batches every rank yields per epoch, the same on every rank and in every epoch.

        A rank gets floor(shards / world_size) or one more shard, which ones changing by epoch;
        so this is floor(S / batch) with S the samples of the floor(shards / world_size)
        smallest shards: the fewest samples a rank can get. `rank` and `workers` do not change it.
        """
        _check_layout(batch_size_per_rank, rank, world_size, workers)
        if self.num_shards < world_size:
            raise InfomaxError(f"{self.num_shards} shards cannot be spread over {world_size} ranks; "
                               "write smaller shards (infomax data shard --shard-size N) so there are at least as many")
        fewest = sum(sorted(self.counts)[: self.num_shards // world_size])
        return fewest // batch_size_per_rank

    def batches(self, *, epoch: int = 0, seed: int = 0, batch_size: int = 256, rank: int = 0, world_size: int = 1,
                workers: int = 0, skip: int = 0):
        """Yield exactly steps_per_epoch (images, labels, ids) batches of this rank, after the first `skip`.

        skip=n resumes an epoch: the first n batches are read, decoded and dropped again (it costs
        the time of reading n batches). A rank whose shards come up short (unreadable members)
        reads them again to fill its last batches, so that every rank yields the same count.
        """
        from infomax.data.stream_pipeline import rank_batches

        steps = self.steps_per_epoch(batch_size, rank, world_size, workers)
        if steps == 0:
            raise InfomaxError(f"batch size {batch_size} is larger than the samples each of {world_size} ranks gets "
                               f"({self.num_samples:,} in {self.num_shards} shards); use a smaller batch")
        if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= steps:
            raise InfomaxError(f"skip={skip!r} must be a whole number of batches from 0 to {steps}")
        yield from rank_batches(self, epoch=epoch, seed=seed, batch_size=batch_size, rank=rank,
                                world_size=world_size, workers=workers, skip=skip, steps=steps)

    def __repr__(self) -> str:
        return (f"Stream({self.spec!r}: {self.num_samples} samples in {self.num_shards} shards, "
                f"images {self.image_shape})")


def _check_layout(batch: int, rank: int, world: int, workers: int) -> None:
    for name, value, low in (("batch size", batch, 1), ("world size", world, 1), ("workers", workers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InfomaxError(f"{name} must be a whole number ≥ {low}, got {value!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world:
        raise InfomaxError(f"rank must be from 0 to world size - 1 = {world - 1}, got {rank!r}")


def open_stream(spec: str, size: int | None = None, *, shuffle_buffer: int = 2000) -> Stream:
    """The Stream of a `webdataset:PATH[,size=N,mode=L,resize=...,norm=...]` spec; `size` overrides size=.

    PATH is a folder with shards.json (written by `infomax data shard`), or shard files with
    brace ranges, `DIR/shard-{000000..000099}.tar` (expanded by webdataset). Without a manifest
    the shards are read once to count their samples (with a warning).
    """
    from infomax.data.spec import parse_spec
    from infomax.extras import require

    parsed = parse_spec(spec)
    if parsed.kind != "webdataset":
        raise InfomaxError(f"'{spec}' is not a webdataset: spec; write it as webdataset:DIR or "
                           "webdataset:DIR/shard-{000000..000009}.tar")
    wds = require("webdataset", "shards", "reading WebDataset shards")
    path = os.path.expanduser(parsed.path)
    urls, manifest = _shard_files(path, wds)
    counts = _counts(urls, manifest, wds)
    options = parsed.options
    size = size if size is not None else options.get("size")
    if manifest is not None:
        shape = tuple(manifest["image_shape"])
        class_names, labelled = manifest.get("class_names"), bool(manifest.get("labelled", True))
        norm = manifest.get("normalization", "center")
    else:
        from infomax.data.stream_pipeline import first_sample

        shape, labelled = first_sample(urls, wds)
        class_names, norm = None, "center"
    channels = {"L": 1, "RGB": 3}.get(options.get("mode"), shape[0])
    if size is not None:
        shape = (channels, size, size)
    elif shape[1] != shape[2]:
        raise InfomaxError(f"the shards hold {shape[2]}×{shape[1]} images; give a square size, e.g. ,size={shape[1]}")
    return Stream(urls, counts, (channels, shape[1], shape[2]), class_names, labelled,
                  options.get("norm") or norm, parsed.text, options.get("resize", "shorter-crop"), shuffle_buffer)


def _shard_files(path: str, wds) -> tuple[list[str], dict | None]:
    """Shard paths and the manifest that lists them (None when there is none)."""
    if os.path.isdir(path):
        manifest = _read_manifest(Path(path) / MANIFEST)
        if manifest is not None and "splits" in manifest and "shards" not in manifest:
            split = "train" if "train" in manifest["splits"] else next(iter(manifest["splits"]))
            return _shard_files(os.path.join(path, manifest["splits"][split]["path"]), wds)
        if manifest is not None:
            return [os.path.join(path, s["name"]) for s in manifest["shards"]], manifest
        urls = sorted(str(p) for p in Path(path).glob("*.tar"))
        if not urls:
            raise InfomaxError(f"{path} holds neither {MANIFEST} nor .tar shards; write them with infomax data shard")
        return urls, None
    urls = wds.shardlists.expand_urls(path)
    missing = [u for u in urls if not os.path.isfile(u)]
    if missing:
        raise InfomaxError(f"{len(missing)} of {len(urls)} shard files do not exist, e.g. {missing[0]}; "
                           "check the path and the {first..last} range")
    folders = {os.path.dirname(u) for u in urls}
    manifest = _read_manifest(Path(folders.pop()) / MANIFEST) if len(folders) == 1 else None
    if manifest is not None and "shards" in manifest:
        listed = {s["name"] for s in manifest["shards"]}
        if all(os.path.basename(u) in listed for u in urls):
            return urls, manifest
    return urls, None


def _read_manifest(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InfomaxError(f"{path} is not a readable shards manifest ({exc}); write the shards again") from None


def _counts(urls: list[str], manifest: dict | None, wds) -> list[int]:
    """Samples per shard: from the manifest, else by reading every shard once."""
    if manifest is not None:
        listed = {s["name"]: int(s["samples"]) for s in manifest["shards"]}
        return [listed[os.path.basename(u)] for u in urls]
    print(f"infomax: no {MANIFEST} lists these {len(urls)} shards; reading them once to count their samples "
          "(write shards with infomax data shard to skip this)", file=sys.stderr)
    from infomax.data.stream_pipeline import count_samples

    return [count_samples(url, wds) for url in urls]
