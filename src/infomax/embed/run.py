"""Embed every split of a data set, train first, into an `Embeddings` record."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from infomax.data.dataset import Dataset, Split
from infomax.embed.embedder import Embedder
from infomax.embed.files import Embeddings
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


def embed_to_folder(checkpoint: str | Path, out: str | Path, *, data: str | None = None, features=("y",),
                    device: str = "auto", precision: str = "fp32", batch_size: int | None = None,
                    progress: bool = True, encoder=None) -> Path:
    """Embed every split of `data` (default: the data the run was trained on) with a run's encoder
    into the embeddings folder `out` (embeddings.npy, metadata.parquet, embed.json); returns it."""
    from infomax.data import load
    from infomax.embed.files import save_embeddings
    from infomax.extras import PARQUET, require_all

    require_all(PARQUET, "eval", "infomax embed (it writes metadata.parquet)")  # before the slow part
    embedder = Embedder.from_checkpoint(checkpoint, device=device, precision=precision, encoder=encoder)
    spec = data or embedder.config["data"]["spec"]
    if not spec:
        raise InfomaxError(f"{checkpoint} was trained on images in memory: give the data set to embed (--data SPEC)")
    dataset = load(spec, progress=progress)
    features = tuple(features) if "y" in features else ("y", *features)
    t0 = time.perf_counter()
    emb = embed_dataset(embedder, dataset, spec=spec, checkpoint=str(Path(checkpoint).resolve()), features=features,
                        batch_size=batch_size, progress=progress)
    seconds = time.perf_counter() - t0
    emb.info["seconds"] = round(seconds, 3)  # embedding only: loading the data and the checkpoint excluded
    path = save_embeddings(out, emb)
    print(f"embedded {len(emb)} images ({', '.join(emb.splits)}) in {seconds:.1f} s "
          f"({len(emb) / max(seconds, 1e-9):.0f} images/s) -> {path}")
    return path
