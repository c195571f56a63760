"""Embed every split of a data set, train first: into an in-memory `Embeddings` record
(`embed_dataset`), or part by part into an embeddings folder (`embed_to_folder`, resumable,
one range of parts per rank under torchrun)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from infomax.data.dataset import Dataset, Split
from infomax.embed.embedder import Embedder
from infomax.embed.files import PART_SIZE, Embeddings
from infomax.embed.resume import finish_folder, job_info, start_folder
from infomax.embed.shards import STORAGE_DTYPES, finished_parts, write_part
from infomax.errors import InfomaxError
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


def embed_dataset(embedder: Embedder, dataset: Dataset, *, spec: str, checkpoint: str, features=("y",),
                  batch_size: int | None = None, progress: bool = False) -> Embeddings:
    pd = require("pandas", "eval", "the embeddings' metadata table")
    parts: dict[str, list[np.ndarray]] = {f: [] for f in features}
    frames, ranges, start = [], {}, 0
    for name, split in dataset.splits.items():
        embedder.check_images(split.images, where=f"the {name} images of {spec}")
        arrays = embedder.embed_features(split.images, features, batch_size, progress)
        for f in features:
            parts[f].append(arrays[f])
        frames.append(split_metadata(name, split, dataset.class_names))
        ranges[name] = [start, start + len(split)]
        start += len(split)
    stacked = {f: np.concatenate(parts[f]) for f in features}
    info = {
        "checkpoint": checkpoint,
        "data": spec,
        "splits": ranges,
        "features": list(features),
        "z_dim": embedder.z_dim,
        "normalization": embedder.normalization,
        "precision": embedder.precision,
        "class_names": dataset.class_names,
    }
    return Embeddings(
        vectors=stacked.pop("y"),
        metadata=pd.concat(frames, ignore_index=True),
        info=info,
        extra=stacked,
    )


def rows_of(dataset: Dataset, start: int, stop: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Images (uint8 n×C×H×W) and metadata of rows [start, stop) of the whole data set, whose rows
    are its splits one after the other (train first)."""
    pd = require("pandas", "eval", "the embeddings' metadata table")
    images, frames, offset = [], [], 0
    for name, split in dataset.splits.items():
        a, b = max(start - offset, 0), min(stop - offset, len(split))
        if a < b:
            images.append(split.images[a:b])
            part = Split(split.images[a:b], None if split.labels is None else split.labels[a:b], split.ids[a:b])
            frames.append(split_metadata(name, part, dataset.class_names))
        offset += len(split)
    if not images:
        return np.zeros((0, *dataset.image_shape), np.uint8), split_metadata("", Split(np.zeros((0,)), None, []), None)
    return (images[0] if len(images) == 1 else np.concatenate(images)), pd.concat(frames, ignore_index=True)


def my_parts(num_parts: int, rank: int, world_size: int) -> range:
    """The contiguous range of parts one rank embeds (the first ranks take one more when uneven)."""
    return range(rank * num_parts // world_size, (rank + 1) * num_parts // world_size)


def embed_parts(embedder: Embedder, dataset: Dataset, out: Path, parts, *, part_size: int, features=("y",),
                dtype: str = "float32", batch_size: int | None = None, progress: bool = False) -> int:
    """Embed and write each part of `parts` not finished yet; returns the images embedded."""
    done, n = set(finished_parts(out)), 0
    for k in parts:
        if k in done:
            continue
        images, metadata = rows_of(dataset, k * part_size, min((k + 1) * part_size, dataset.num_images))
        arrays = embedder.embed_features(images, features, batch_size, progress) if len(images) else {
            f: np.zeros((0, embedder.z_dim if f == "y" else 0), np.float32) for f in features}
        stored = {f: a.astype(dtype, copy=False) for f, a in arrays.items()}
        write_part(out, k, stored.pop("y"), metadata, stored)
        n += len(images)
    return n


def checkpoint_sha256(checkpoint: str | Path) -> str | None:
    """sha256 of the weights the checkpoint's manifest records (identifies the exact weights)."""
    import json

    from infomax.checkpoint import MANIFEST, WEIGHTS, find_checkpoint

    try:
        manifest = json.loads((find_checkpoint(checkpoint) / MANIFEST).read_text())
    except (OSError, ValueError, InfomaxError):
        return None
    return manifest.get("sha256", {}).get(WEIGHTS)


def embed_to_folder(checkpoint: str | Path, out: str | Path, *, data: str | None = None, features=("y",),
                    device: str = "auto", precision: str = "fp32", batch_size: int | None = None,
                    progress: bool = True, encoder=None, part_size: int = PART_SIZE, dtype: str = "float32",
                    replace: bool = False) -> Path:
    """Embed every split of `data` (default: the data the run was trained on) with a run's encoder
    into the embeddings folder `out`, one part of `part_size` rows at a time; returns it.

    A folder holding an unfinished embed of the same checkpoint, data and settings resumes from
    its finished parts; one of other settings is an error unless replace=True (then it is
    replaced). Under torchrun each rank embeds its own contiguous range of parts."""
    from infomax.data import load
    from infomax.device import pick_device
    from infomax.extras import PARQUET, require_all
    from infomax.train import distributed

    require_all(PARQUET, "eval", "infomax embed (it writes the metadata as parquet)")  # before the slow part
    if dtype not in STORAGE_DTYPES:
        raise InfomaxError(f"--dtype must be one of {', '.join(STORAGE_DTYPES)}, got {dtype!r}")
    if part_size < 1:
        raise InfomaxError(f"--part-size must be at least 1 row, got {part_size}")
    ranks = distributed.setup()
    device = str(distributed.device_for(pick_device(device), ranks))
    embedder = Embedder.from_checkpoint(checkpoint, device=device, precision=precision, encoder=encoder)
    spec = data or embedder.config["data"]["spec"]
    if not spec:
        raise InfomaxError(f"{checkpoint} was trained on images in memory: give the data set to embed (--data SPEC)")
    with distributed.main_first():  # rank 0 decodes (and caches) first, the others then read its cache
        dataset = load(spec, progress=progress and ranks.main)
    for name, split in dataset.splits.items():
        embedder.check_images(split.images[:0], where=f"the {name} images of {spec}")
    features = tuple(features) if "y" in features else ("y", *features)
    info = job_info(embedder, dataset, spec=spec, checkpoint=checkpoint, features=features, dtype=dtype,
                    part_size=part_size)
    out = Path(out)
    start_folder(out, info, replace=replace, main=ranks.main)
    t0 = time.perf_counter()
    mine = my_parts(info["num_parts"], ranks.rank, ranks.world_size)
    n = embed_parts(embedder, dataset, out, mine, part_size=part_size, features=features, dtype=dtype,
                    batch_size=batch_size, progress=progress and ranks.main)
    seconds = max(distributed.all_objects(time.perf_counter() - t0))  # embedding only: loading excluded
    embedded = sum(distributed.all_objects(n))
    distributed.barrier()  # every rank's parts are written
    if ranks.main:
        finish_folder(out, info, seconds)
        resumed = f", {dataset.num_images - embedded} of them before" if embedded < dataset.num_images else ""
        print(f"embedded {dataset.num_images} images ({', '.join(dataset.splits)}{resumed}) into {info['num_parts']} "
              f"parts in {seconds:.1f} s ({embedded / max(seconds, 1e-9):.0f} images/s, {ranks.world_size} "
              f"process{'es' if ranks.distributed else ''}) -> {out}")
    distributed.barrier()  # no rank returns before the folder is complete
    return out
