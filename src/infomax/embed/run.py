"""Embed every split of a data set, train first: into an in-memory `Embeddings` record
(`embed_dataset`), or part by part into an embeddings folder (`embed_to_folder`, resumable,
one range of parts per rank under torchrun)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from infomax.data.dataset import Dataset
from infomax.embed.embedder import Embedder
from infomax.embed.files import PART_SIZE, Embeddings
from infomax.embed.resume import finish_folder, job_info, start_folder
from infomax.embed.sources import ArraySource, StreamSource, split_metadata
from infomax.embed.shards import STORAGE_DTYPES, finished_parts, write_part
from infomax.errors import InfomaxError
from infomax.extras import require

__all__ = ["embed_dataset", "embed_parts", "embed_to_folder", "split_metadata"]


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
        "whitening": embedder.whitening_power,
        "mirror": embedder.mirror,
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


def embed_parts(embedder: Embedder, source, out: Path, parts, *, features=("y",), dtype: str = "float32",
                batch_size: int | None = None, progress: bool = False) -> int:
    """Embed and write each part of `parts` (of an ArraySource or StreamSource) not finished yet;
    returns the images embedded."""
    done, n = set(finished_parts(out)), 0
    for k in parts:
        if k in done:
            continue
        images, metadata = source.read(k)
        arrays = embedder.embed_features(images, features, batch_size, progress) if len(images) else {
            f: np.zeros((0, embedder.z_dim if f in ("y", "mu") else 0), np.float32) for f in features}
        stored = {f: a.astype(dtype, copy=False) for f, a in arrays.items()}
        write_part(out, k, stored.pop("y"), metadata, stored)
        n += len(images)
    return n


def open_source(spec: str, part_size: int, progress: bool = False):
    """An ArraySource (data sets read as arrays; rank 0 decodes and caches first) or, for a
    webdataset: spec, a StreamSource."""
    from infomax.data import load
    from infomax.data.spec import STREAM_KINDS, parse_spec
    from infomax.train import distributed

    if parse_spec(spec).kind in STREAM_KINDS:
        from infomax.data.stream import open_stream

        return StreamSource(open_stream(spec))
    with distributed.main_first():
        return ArraySource(load(spec, progress=progress), part_size)


def read_at_model_size(spec: str, embedder: Embedder) -> str:
    """A folder spec without size= reads its images at the encoder's side, so that photos of any
    sizes embed with any checkpoint (`folder:~/photos` -> `folder:~/photos,size=64`). Other
    specs are returned as given."""
    from infomax.data.spec import parse_spec

    parsed = parse_spec(spec)
    return f"{spec},size={embedder.image_size}" if parsed.kind == "folder" and "size" not in parsed.options else spec


def embed_to_folder(checkpoint: str | Path, out: str | Path, *, data: str | None = None, features=("y",),
                    device: str = "auto", precision: str = "fp32", batch_size: int | None = None,
                    progress: bool = True, encoder=None, part_size: int = PART_SIZE, dtype: str = "float32",
                    replace: bool = False) -> Path:
    """Embed every split of `data` (default: the data the run was trained on) with a run's encoder
    into the embeddings folder `out`, one part of `part_size` rows (or one tar shard) at a time;
    returns it.

    A folder holding an unfinished embed of the same checkpoint, data and settings resumes from
    its finished parts; one of other settings is an error unless replace=True (then it is
    replaced). Under torchrun each rank embeds its own parts: a contiguous range of an array
    data set's, every W-th shard of a webdataset: stream (one part per shard)."""
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
    spec = read_at_model_size(data, embedder) if data else embedder.config["data"]["spec"]
    if not spec:
        raise InfomaxError(f"{checkpoint} was trained on images in memory: give the data set to embed (--data SPEC)")
    source = open_source(spec, part_size, progress=progress and ranks.main)
    for shape in source.image_shapes:  # before the slow part
        embedder.check_images(np.zeros((0, *shape), np.uint8), where=f"the images of {spec}")
    features = tuple(features) if "y" in features else ("y", *features)
    info = job_info(embedder, source, spec=spec, checkpoint=checkpoint, features=features, dtype=dtype)
    out = Path(out)
    start_folder(out, info, replace=replace, main=ranks.main)
    t0 = time.perf_counter()
    n = embed_parts(embedder, source, out, source.parts_of(ranks.rank, ranks.world_size), features=features,
                    dtype=dtype, batch_size=batch_size, progress=progress and ranks.main)
    seconds = max(distributed.all_objects(time.perf_counter() - t0))  # embedding only: loading excluded
    embedded = sum(distributed.all_objects(n))
    distributed.barrier()  # every rank's parts are written
    if ranks.main:
        record = finish_folder(out, info, seconds)
        total = sum(p["rows"] for p in record["parts"])
        resumed = f", {total - embedded} of them before" if embedded < total else ""
        print(f"embedded {total} images ({', '.join(source.splits)}{resumed}) into {info['num_parts']} "
              f"parts in {seconds:.1f} s ({embedded / max(seconds, 1e-9):.0f} images/s, {ranks.world_size} "
              f"process{'es' if ranks.distributed else ''}) -> {out}")
    distributed.barrier()  # no rank returns before the folder is complete
    return out
