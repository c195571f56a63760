"""Embed every split of a data set, train first, into an `Embeddings` record."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from infomax.data.dataset import Dataset, Split
from infomax.embed.embedder import Embedder
from infomax.embed.files import Embeddings
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
