"""The search service behind the web app: a trained encoder, a gallery index and the gallery images.

Everything is loaded once. Searches go through one `Batcher` worker, which embeds the uploaded
images of a batch in one forward pass (eval mode, `torch.inference_mode`) and makes one index call
per distinct k in the batch. A search by gallery row reads the row's stored vector from the
index: no model call.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from infomax.errors import InfomaxError
from infomax.extras import require
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

    def __init__(self, embedder, index, gallery: Gallery, max_batch: int = 64, threads: int | None = None):
        """threads: set the model's and the index's thread counts to this (None leaves them as they are)."""
        self.embedder = embedder
        self.index = index
        self.gallery = gallery
        self.size = len(gallery)
        if len(index) != self.size:
            raise ValueError(f"the index holds {len(index)} vectors but the gallery {self.size} images")
        setup = None
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be at least 1, got {threads}")
            setup = lambda: set_threads(threads)  # noqa: E731  (the index scans with the worker's OpenMP count)
        self.batcher = Batcher(self._run_batch, max_batch=max_batch, setup=setup)

    @classmethod
    def open(cls, index_dir: str, checkpoint: str | None = None, data: str | None = None, device: str = "auto",
             threads: int | None = None) -> "SearchService":
        """Load the index, the encoder and the gallery images.

        checkpoint and data default to the ones the index records (the embeddings' checkpoint and
        data spec), as in `infomax search`.
        """
        from infomax.data import load
        from infomax.embed.embedder import Embedder
        from infomax.index.sharded import open_index

        index = open_index(index_dir)  # one index folder, or one written with --shards
        checkpoint = checkpoint or index.info.get("checkpoint")
        if not checkpoint:
            raise InfomaxError(f"the index {index_dir} records no checkpoint; pass --checkpoint RUN_DIR")
        embedder = Embedder.from_checkpoint(checkpoint, device=device)
        if index.dim != embedder.z_dim:
            raise InfomaxError(f"the index {index_dir} holds {index.dim}-dim vectors but {checkpoint} makes "
                               f"{embedder.z_dim}-dim features; pass the checkpoint whose embeddings were indexed")
        spec = data or index.info.get("data") or embedder.config["data"]["spec"]
        gallery = Gallery.for_index(load(spec, progress=False), index, spec)
        return cls(embedder, index, gallery, threads=threads)

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
        return [{**d, "score": s} for d, s in zip(self.gallery.describe_rows(hits.rows), hits.scores)]

    # --- the worker ---------------------------------------------------------------------------

    def _run_batch(self, queries: Sequence[Query]) -> list[Hits]:
        vectors = np.empty((len(queries), self.embedder.z_dim), dtype=np.float32)
        uploads = [i for i, q in enumerate(queries) if q.image is not None]
        if uploads:
            vectors[uploads] = self.embedder.embed(np.stack([queries[i].image for i in uploads]))
        by_row = [i for i, q in enumerate(queries) if q.image is None]
        if by_row:  # one read of the stored unit vectors for the whole batch
            vectors[by_row] = self.index.vectors[[queries[i].row for i in by_row]]
        # A row query drops itself from its neighbours, so it asks for one more (as `infomax search
        # --row` does). Queries are scanned together per k: with an approximate index, k sets how
        # widely it looks, so each query gets exactly the answer `infomax search` gives.
        want = [min(q.k + (q.image is None), self.size) for q in queries]
        hits: list = [None] * len(queries)
        for k in sorted(set(want)):
            group = [i for i, w in enumerate(want) if w == k]
            scores, rows = self.index.search(vectors[group], k)
            for j, i in enumerate(group):
                hits[i] = self._hits(queries[i], scores[j], rows[j])
        return hits

    @staticmethod
    def _hits(q: Query, scores: np.ndarray, rows: np.ndarray) -> Hits:
        keep = [(int(r), float(s)) for r, s in zip(rows, scores) if r >= 0 and r != q.row]
        keep = keep[: q.k]
        return Hits([r for r, _ in keep], [s for _, s in keep])


def default_threads() -> int:
    """All cores but one, which is left to the event loop that parses requests and writes responses."""
    return max(1, (os.cpu_count() or 2) - 1)


def set_threads(n: int) -> None:
    """Threads for the model (process-wide) and the index scan (OpenMP: for the calling thread)."""
    faiss = require("faiss", "index", "the search index")
    import torch

    torch.set_num_threads(n)
    faiss.omp_set_num_threads(n)
