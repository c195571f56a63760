"""Embeddings and their metadata exported to a vector database that runs on many machines (Qdrant).

Targets (`infomax export --embeddings EMB --to TARGET`):
  qdrant:PATH                  Qdrant's local mode: an embedded database in the folder PATH, no server
                               (for trying it out and for tests; it keeps every vector in memory)
  qdrant:http://HOST:6333      a Qdrant server or cluster (its API key from $QDRANT_API_KEY)

Each embeddings row becomes one point of the collection:
  point id  the row number 0..N-1 (the row `infomax search` prints, the row of embeddings/part-*.npy)
  vector    μ, float32, compared by cosine similarity (the index's metric)
  payload   id (the image's id in its data set), split, label (absent when unknown), label_name

Rows are read part by part and sent in batches, so memory stays one batch whatever N is. Points are
upserted by row number: a rerun writes the same points again, so an export that was interrupted is
completed by running it again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from infomax.errors import InfomaxError
from infomax.extras import require

SCHEMES = ("qdrant",)
BATCH = 1024  # points per upsert request


def parse_target(target: str) -> tuple[str, str]:
    """'qdrant:LOCATION' -> ('qdrant', LOCATION); LOCATION is a folder or an http(s) URL."""
    scheme, sep, location = target.partition(":")
    if not sep or scheme not in SCHEMES or not location:
        raise InfomaxError(f"--to {target!r}: give qdrant:PATH (a local database folder) or "
                           "qdrant:http://HOST:6333 (a Qdrant server)")
    return scheme, location


def connect(target: str):
    """A client for the target: Qdrant's local mode for a folder, the server for a URL."""
    _, location = parse_target(target)
    qdrant = require("qdrant_client", "vectordb", "export to Qdrant")
    if location.startswith(("http://", "https://")):
        return qdrant.QdrantClient(url=location, api_key=os.environ.get("QDRANT_API_KEY"))
    Path(location).mkdir(parents=True, exist_ok=True)
    return qdrant.QdrantClient(path=location)


def payloads(metadata) -> list[dict]:
    """One payload per metadata row: id, split, label_name, and label where it is known."""
    known = metadata["label"].notna().to_numpy()
    out = []
    for image_id, split, label, name, ok in zip(metadata["id"], metadata["split"], metadata["label"],
                                                metadata["label_name"], known):
        p = {"id": str(image_id), "split": str(split), "label_name": str(name)}
        if ok:
            p["label"] = int(label)
        out.append(p)
    return out


def row_batches(emb_dir: str | Path, vectors, batch: int = BATCH) -> Iterator[tuple[np.ndarray, np.ndarray, list[dict]]]:
    """(row numbers, float32 vectors, payloads) of up to `batch` rows at a time, in row order;
    vectors: the folder's (infomax.embed.files.load_vectors), metadata read a part at a time."""
    from infomax.embed.shards import iter_metadata

    for start, part in iter_metadata(emb_dir):
        for a in range(0, len(part), batch):
            rows = part.iloc[a : a + batch]
            first = start + a
            yield np.arange(first, first + len(rows)), vectors[first : first + len(rows)], payloads(rows)


def export_embeddings(emb_dir: str | Path, target: str, collection: str = "infomax", *, batch: int = BATCH,
                      progress: bool = True) -> dict:
    """Write every row of the embeddings folder into `collection` of the target (created if missing,
    cosine distance); returns {"collection", "points", "dim", "target"}."""
    models = require("qdrant_client.models", "vectordb", "export to Qdrant")
    from infomax.embed.files import load_vectors

    vectors = load_vectors(emb_dir)
    dim = int(vectors.shape[1])
    client = connect(target)
    try:
        if client.collection_exists(collection):
            size = client.get_collection(collection).config.params.vectors.size
            if size != dim:
                raise InfomaxError(f"collection {collection!r} at {target} holds {size}-d vectors, these are {dim}-d; "
                                   "export to another --collection or delete that one")
        else:
            client.create_collection(collection, vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE))
        total = 0
        batches = row_batches(emb_dir, vectors, batch)
        if progress:
            from tqdm import tqdm

            batches = tqdm(batches, total=-(-len(vectors) // batch), unit="batch", desc="export")
        for rows, block, loads in batches:
            client.upsert(collection, points=models.Batch(ids=rows.tolist(), vectors=block.tolist(), payloads=loads))
            total += len(rows)
        return {"collection": collection, "points": total, "dim": dim, "target": target}
    finally:
        client.close()

