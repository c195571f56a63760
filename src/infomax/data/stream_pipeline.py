"""The reading side of a Stream: webdataset pipelines in DataLoader workers, batches in the caller.

Worker k of a rank reads the rank's shards k, k + K, ... (webdataset's split_by_worker), shuffles
their samples in a seeded buffer (still encoded), decodes them with infomax.data.decode and
sends chunks of CHUNK images. The DataLoader takes chunks from its workers in turn, so the order
is fixed; the caller cuts the chunks into batches. Unreadable members are skipped, counted in
stream.skipped and reported on stderr with their key and shard.

Only the members a sample is trained on are read: its image and its .cls (the bytes of the
others, such as the .json that `infomax data shard` writes, are skipped, their headers still
parsed).
"""

from __future__ import annotations

import sys

import numpy as np
import torch

from infomax.errors import InfomaxError

CHUNK = 32  # images per message from a worker
IMAGE_KEYS = ("npy", "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "ppm", "gif")  # npy: raw uint8 pixels
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
SHOWN = 20  # unreadable members named on stderr per stream; the rest are only counted
READ_KEYS = frozenset(IMAGE_KEYS + ("cls",))  # the members a stream reads


def read_member(name: str) -> bool:
    """Whether a tar member is read: an image or a .cls (its extension as webdataset splits it,
    after the first dot of the file name)."""
    return name.rpartition("/")[2].partition(".")[2].lower() in READ_KEYS


def image_member(sample: dict) -> tuple[str, bytes] | tuple[None, None]:
    """(extension, bytes) of a sample's image member."""
    return next(((k, sample[k]) for k in IMAGE_KEYS if k in sample), (None, None))


def decode_member(kind: str, data: bytes, size: int | None, mode: str, resize: str) -> np.ndarray:
    """C×H×W uint8 pixels of an image member: raw .npy pixels, or an encoded image."""
    from infomax.data.decode import decode_array, decode_npy

    return (decode_npy if kind == "npy" else decode_array)(data, size, mode, resize)


def stream_seed(*parts: int) -> int:
    """One 64-bit seed from (seed, epoch, ...): numpy's SeedSequence mixes them."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0])


class ShardSamples(torch.utils.data.IterableDataset):
    """The decoded samples of one rank's shards, in chunks: (uint8 K×C×H×W, int64 K or None, keys, failures)."""

    def __init__(self, urls: list[str], shape, labelled: bool, resize: str, buffer: int, seeds: tuple):
        super().__init__()
        self.urls, self.shape, self.labelled, self.resize = urls, tuple(shape), labelled, resize
        self.buffer, self.seeds = buffer, seeds

    def __iter__(self):
        import random

        import webdataset as wds

        info = torch.utils.data.get_worker_info()
        worker = 0 if info is None else info.id
        failures: list[tuple[str, str, str]] = []

        def tar_error(exc: Exception) -> bool:  # a damaged tar: note it, go on with the next member
            failures.append((_url_of(exc, self.urls), "", f"damaged shard ({exc.args[0] if exc.args else exc})"))
            return True

        pipeline = wds.DataPipeline(
            wds.SimpleShardList(self.urls),
            wds.split_by_worker,
            wds.tarfile_to_samples(handler=tar_error, select_files=read_member),
            wds.shuffle(self.buffer, initial=self.buffer, rng=random.Random(stream_seed(*self.seeds, worker))),
        )
        images, labels, keys = [], [], []
        for sample in pipeline:
            decoded = self._decode(sample)
            if isinstance(decoded, str):
                failures.append((sample.get("__url__", "?"), sample.get("__key__", "?"), decoded))
                continue
            images.append(decoded[0])
            labels.append(decoded[1])
            keys.append(sample["__key__"])
            if len(keys) == CHUNK:
                yield self._chunk(images, labels, keys, failures)
                images, labels, keys, failures[:] = [], [], [], []
        if keys or failures:
            yield self._chunk(images, labels, keys, failures)

    def _decode(self, sample: dict):
        """(C×H×W pixels, label) or the reason the sample cannot be used."""
        from infomax.data.decode import BadImage

        kind, data = image_member(sample)
        if data is None:
            return f"no image member (none of .{', .'.join(IMAGE_KEYS)})"
        label = -1
        if self.labelled:
            try:
                label = int(sample["cls"])
            except (KeyError, ValueError):
                return "no readable .cls label"
        try:
            pixels = decode_member(kind, data, self.shape[1], "L" if self.shape[0] == 1 else "RGB", self.resize)
        except BadImage as exc:
            return str(exc)
        return pixels, label

    def _chunk(self, images, labels, keys, failures):
        pixels = torch.from_numpy(np.stack(images)) if images else torch.empty((0, *self.shape), dtype=torch.uint8)
        label = torch.tensor(labels, dtype=torch.int64) if self.labelled else None
        return pixels, label, list(keys), list(failures)


def _url_of(exc: Exception, urls: list[str]) -> str:
    """The shard an exception from webdataset names (it appends the url to exc.args)."""
    return next((a for a in exc.args if isinstance(a, str) and a in urls), "?")


def rank_batches(stream, *, epoch, seed, batch_size, rank, world_size, workers, skip, steps):
    """Batches of one rank (see Stream.batches)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0 or not isinstance(epoch, int) or epoch < 0:
        raise InfomaxError(f"seed and epoch must be whole numbers ≥ 0, got seed={seed!r}, epoch={epoch!r}")
    order = np.random.default_rng(stream_seed(seed, epoch)).permutation(stream.num_shards)
    urls = [stream.urls[i] for i in order[rank::world_size]]
    dataset = ShardSamples(urls, stream.image_shape, stream.labelled, stream.resize, stream.shuffle_buffer,
                           (seed, epoch, rank))
    chunks = _passes(stream, dataset, workers, rank)
    try:
        yield from _assemble(chunks, batch_size, steps, skip, stream.labelled)
    finally:
        chunks.close()  # stops the DataLoader's workers


def _passes(stream, dataset, workers: int, rank: int):
    """The rank's chunks; read again from the start when it ends before the batches are filled."""
    while True:
        got = 0
        items = iter(_loader(dataset, workers))
        try:
            for images, labels, keys, failures in items:
                _report(stream, failures)
                got += len(keys)
                if keys:
                    yield images, labels, keys
        finally:
            del items
        if got == 0:
            raise InfomaxError(f"rank {rank} read no usable sample from its {len(dataset.urls)} shards "
                               f"(e.g. {dataset.urls[0]}); check the shards")
        print(f"infomax: rank {rank}'s shards hold fewer readable samples than its batches need; "
              "reading them again to fill the last batches", file=sys.stderr)


def _loader(dataset, workers: int):
    if workers == 0:
        return dataset
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers, prefetch_factor=4)


def _assemble(chunks, batch: int, steps: int, skip: int, labelled: bool):
    """Cut chunks into `steps` batches of `batch`; yield those after the first `skip`."""
    images, labels, keys, made = [], [], [], 0
    for chunk_images, chunk_labels, chunk_keys in chunks:
        images.append(chunk_images)
        labels.append(chunk_labels)
        keys += chunk_keys
        while len(keys) >= batch:
            pixels = _cat(images)
            label = _cat(labels) if labelled else None
            made += 1
            if made > skip:
                yield pixels[:batch], None if label is None else label[:batch], keys[:batch]
            if made == steps:
                return
            images, keys = [pixels[batch:]], keys[batch:]
            labels = [label[batch:]] if labelled else [None]


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    """torch.cat through numpy: a single-threaded copy (torch's threads spin on a busy machine)."""
    return parts[0] if len(parts) == 1 else torch.from_numpy(np.concatenate([p.numpy() for p in parts]))


def _report(stream, failures) -> None:
    for shard, key, reason in failures:
        if (shard, key) in stream.skipped_keys:
            continue  # seen in an earlier epoch or pass
        stream.skipped_keys.add((shard, key))
        if len(stream.skipped) < SHOWN:
            where = f"{key} in {shard}" if key else shard
            print(f"infomax: skipped {where}: {reason}", file=sys.stderr)
        stream.skipped.append((shard, key, reason))


def count_samples(url: str, wds) -> int:
    """The samples of one shard, counted by reading it (members are not decoded)."""
    pipeline = wds.DataPipeline(wds.SimpleShardList([url]), wds.tarfile_to_samples(handler=wds.warn_and_continue))
    return sum(1 for _ in pipeline)


def first_sample(urls: list[str], wds) -> tuple[tuple[int, int, int], bool]:
    """(C×H×W of the first decodable image, whether samples carry .cls labels), for shards without manifest."""
    from infomax.data.decode import BadImage, identify

    pipeline = wds.DataPipeline(wds.SimpleShardList(urls), wds.tarfile_to_samples(handler=wds.warn_and_continue))
    for sample in pipeline:
        kind, data = image_member(sample)
        if data is None:
            continue
        try:
            # the stored channels: a .npy's first axis, else the image's mode (the allowed formats only)
            mode = None if kind == "npy" else "L" if identify(data).mode in GRAY_MODES else "RGB"
            pixels = decode_member(kind, data, None, mode, "shorter-crop")
        except (BadImage, OSError):
            continue
        return tuple(int(s) for s in pixels.shape), "cls" in sample
    raise InfomaxError(f"no sample of {urls[0]} ... holds a readable image; check the shards")
