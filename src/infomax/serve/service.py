"""The search service behind the web app: a trained encoder, a gallery index and the gallery images.

Everything is loaded once. Searches go through one `Batcher` worker, which embeds the uploaded
images of a batch in one forward pass (eval mode, `torch.inference_mode`) and scans the index
once for all queries of the batch. A search by gallery row reads the row's stored vector from the
index: no model call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from infomax.errors import InfomaxError
from infomax.serve.batcher import Batcher
from infomax.serve.gallery import Gallery

MAX_K = 100
DEFAULT_K = 10


@dataclass(frozen=True)
class Query:
    """One search: a decoded image (uint8 C×H×W) or a gallery row, and how many neighbours."""

    k: int
    image: np.ndarray | None = None
    row: int | None = None


@dataclass(frozen=True)
class Hits:
    rows: list[int]
    scores: list[float]


class SearchService:
    """Answers searches by image or by gallery row; safe to call from many threads at once."""

    def __init__(self, embedder, index, gallery: Gallery, max_batch: int = 64):
        self.embedder = embedder
        self.index = index
        self.gallery = gallery
        self.size = len(index.ids)
        self.batcher = Batcher(self._run_batch, max_batch=max_batch)

    @classmethod
    def open(cls, index_dir: str, checkpoint: str, data: str | None = None, device: str = "auto") -> "SearchService":
        """Load the index, the encoder and the gallery images (the data spec defaults to the index's)."""
        from infomax.data import load
        from infomax.embed.embedder import Embedder
        from infomax.index.store import GalleryIndex

        index = GalleryIndex.load(index_dir)
        embedder = Embedder.from_checkpoint(checkpoint, device=device)
        spec = data or data_spec_of(index, embedder)
        dataset = load(spec, progress=False)
        gallery = Gallery.from_dataset(dataset, index.metadata, spec)
        check_dimensions(index, embedder, index_dir, checkpoint)
        return cls(embedder, index, gallery)

    def close(self) -> None:
        self.batcher.close()

    # --- what a request calls -------------------------------------------------------------------

    def decode(self, data: bytes) -> np.ndarray:
        """Upload bytes -> uint8 C×H×W the way the training data was decoded (InfomaxError if bad)."""
        return self.embedder.load_image(data)

    def check_k(self, k) -> int:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InfomaxError(f"k must be a whole number from 1 to {MAX_K} (got {k!r})")
        return k

    def row_of(self, key) -> int:
        """A gallery row number (int) or source id (str) -> row; KeyError if the index lacks it."""
        if isinstance(key, bool):
            raise KeyError(f"unknown id {key!r}")
        if isinstance(key, int):
            if 0 <= key < self.size:
                return key
            raise KeyError(f"no gallery row {key}: rows are 0 to {self.size - 1}")
        row = self.gallery.row_of(str(key))
        if row is None or row >= self.size:
            raise KeyError(f"unknown id {str(key)!r}: no gallery image has this id")
        return row

    def submit(self, query: Query):
        """Queue a search; returns a concurrent.futures.Future of `Hits`."""
        return self.batcher.submit(query)

    def search(self, query: Query) -> Hits:
        """Blocking search (for scripts and tests)."""
        return self.batcher(query)

    def describe(self, hits: Hits) -> list[dict]:
        return [{**self.gallery.describe(r), "score": s} for r, s in zip(hits.rows, hits.scores)]

    # --- the worker ---------------------------------------------------------------------------

    def _run_batch(self, queries: Sequence[Query]) -> list[Hits]:
        vectors = np.empty((len(queries), self.embedder.z_dim), dtype=np.float32)
        uploads = [i for i, q in enumerate(queries) if q.image is not None]
        if uploads:
            vectors[uploads] = self.embedder.embed(np.stack([queries[i].image for i in uploads]))
        for i, q in enumerate(queries):
            if q.image is None:
                vectors[i] = self.index.vector(q.row)
        # A row query drops itself from its neighbours, so it asks for one more.
        k = min(max(q.k + (q.image is None) for q in queries), self.size)
        scores, rows = self.index.search(vectors, k)
        return [self._hits(q, scores[i], rows[i]) for i, q in enumerate(queries)]

    @staticmethod
    def _hits(q: Query, scores: np.ndarray, rows: np.ndarray) -> Hits:
        keep = [(int(r), float(s)) for r, s in zip(rows, scores) if r >= 0 and r != q.row]
        keep = keep[: q.k]
        return Hits([r for r, _ in keep], [s for _, s in keep])


def set_threads(threads: int | None = None) -> int:
    """Threads for the model and the index scan (process-wide); by default all cores but one,
    which is left to the event loop that parses requests and writes responses."""
    import faiss
    import torch

    n = threads or max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
    return n


def data_spec_of(index, embedder) -> str:
    """The data spec recorded with the index's embeddings, else the checkpoint's training data."""
    info = getattr(index, "info", None) or {}
    for key in ("data", "data_spec"):
        if isinstance(info.get(key), str):
            return info[key]
    embeddings = info.get("embeddings") if isinstance(info.get("embeddings"), dict) else {}
    if isinstance(embeddings.get("data"), str):
        return embeddings["data"]
    return embedder.config["data"]["spec"]


def check_dimensions(index, embedder, index_dir: str, checkpoint: str) -> None:
    dim = int(np.asarray(index.vector(0)).shape[-1]) if len(index.ids) else embedder.z_dim
    if dim != embedder.z_dim:
        raise InfomaxError(
            f"the index {index_dir} holds {dim}-dimensional vectors but {checkpoint} makes {embedder.z_dim}; "
            "pass the checkpoint the embeddings were made with"
        )
