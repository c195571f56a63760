"""A gallery index on disk, and `GalleryIndex`, the object that searches it.

INDEX_DIR/
  index.json         kind, search settings, dims, size, the source embeddings and their fingerprint
  vectors.npy        float32 n×D: the gallery vectors, L2-normalized (exact scores, re-ranking, .vector)
  rows.npy           int64 n: the row of each gallery vector in the embeddings folder (an hnsw
                     index stores similar vectors together, so this order is not the folder's)
  metadata.parquet   n rows: id, split, label, label_name of each gallery vector
  index.faiss        the faiss structure (hnsw / ivf / ivfpq; a flat index is rebuilt from vectors.npy)

An ivfpq index (see `infomax.index.ivfpq`) has no vectors.npy: it re-ranks with the rows of the
embeddings folder it records; its metadata is metadata.arrow (memory-mapped, read by row) with
id_order.npy (positions sorted by id), and index.faiss and rows.npy are memory-mapped.

A folder is written under a temporary name and renamed into place, so a reader never sees half of one.

Positions: `GalleryIndex.search` returns positions 0..n-1 in the gallery; `.ids[p]`,
`.metadata.iloc[p]`, `.embedding_rows[p]` and `.vector(p)` describe position p.

Threads: `search` only reads the index, so several threads may call it at once on one
GalleryIndex (faiss CPU searches are safe for concurrent readers; the per-call search settings
are passed as parameters, never written into the shared index).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from infomax.errors import InfomaxError
from infomax.extras import require
from infomax.index.build import flat_index

pd = require("pandas", "index", "the search index")

INFO, VECTORS, ROWS, METADATA, FAISS = "index.json", "vectors.npy", "rows.npy", "metadata.parquet", "index.faiss"
ARROW, ID_ORDER = "metadata.arrow", "id_order.npy"
FORMAT = 1
SAMPLE_ROWS = 1024
SMALL_BATCH = 16  # fewer queries than this search on one thread: no thread start-up per query


def fingerprint(vectors: np.ndarray, ids) -> dict:
    """Identity of an embeddings matrix (N×D) and its ids: shape + sha256 of up to 1024 evenly spaced rows."""
    n = len(vectors)
    sample = np.unique(np.linspace(0, n - 1, min(n, SAMPLE_ROWS)).astype(np.int64)) if n else np.zeros(0, np.int64)
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(np.asarray(vectors[sample], dtype=np.float32)).tobytes())
    h.update("\n".join(str(i) for i in ids[sample]).encode())  # ids: an array, or a column read by row
    return {"shape": [int(n), int(vectors.shape[1])], "sample_sha256": h.hexdigest()}


def write_index_dir(out_dir: str | Path, info: dict, unit: np.ndarray, rows: np.ndarray, metadata: pd.DataFrame, faiss_index=None) -> Path:
    """Write a complete index folder atomically (temp folder + rename); replaces an older index there."""
    faiss = require("faiss", "index", "the search index")

    def fill(tmp: Path) -> None:
        with open(tmp / VECTORS, "wb") as f:
            np.save(f, np.ascontiguousarray(unit, dtype=np.float32))
        with open(tmp / ROWS, "wb") as f:
            np.save(f, np.asarray(rows, dtype=np.int64))
        metadata.reset_index(drop=True).to_parquet(tmp / METADATA, index=False)
        if faiss_index is not None:
            faiss.write_index(faiss_index, str(tmp / FAISS))
        (tmp / INFO).write_text(json.dumps(info, indent=2))

    return write_folder(out_dir, fill)


def write_folder(out_dir: str | Path, fill) -> Path:
    """Create an index folder atomically: fill(tmp_folder) writes its files, then it is renamed
    into place (replacing an older index there; a folder that is not an index is refused)."""
    out = Path(out_dir)
    is_index = (out / INFO).is_file() or (out / "shards.json").is_file()  # one index, or a sharded one
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_index)):
        raise InfomaxError(f"{out} exists and is not an index folder; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        fill(tmp)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


class GalleryIndex:
    """A loaded gallery index: search unit-normalized queries by cosine similarity."""

    def __init__(self, path: Path, info: dict, vectors: np.ndarray, rows: np.ndarray, metadata, index):
        from infomax.index.lazy import ArrowMetadata, LazyIds

        self.path = path
        self.info = info
        self.kind: str = info["kind"]
        self.params: dict = info.get("params", {})
        self.vectors = vectors  # float32 n×D unit vectors (memory-mapped; ivfpq: lazy.UnitRows)
        self.embedding_rows = rows  # int64 n: rows in the embeddings folder
        self.metadata = metadata  # n rows: id, split, label, label_name (ivfpq: lazy.ArrowMetadata)
        self.lazy = isinstance(metadata, ArrowMetadata)  # metadata read by row, never whole
        self.ids = LazyIds(metadata) if self.lazy else [str(i) for i in metadata["id"]]
        self.index = index
        self._parameters: dict = {}  # faiss search settings, built once per (results, setting)
        if self.kind == "ivfpq":  # mapped pages of the index leave the RSS above a budget (index/pages.py)
            from infomax.index.pages import PageBudget

            self.pages = PageBudget(path)

    @classmethod
    def load(cls, index_dir: str | Path) -> "GalleryIndex":
        """Read an index folder written by `infomax index`."""
        faiss = require("faiss", "index", "the search index")

        d = Path(index_dir)
        if not (d / INFO).is_file():
            raise InfomaxError(f"{d} is not an index folder (no {INFO}); build one with `infomax index --out {d}`")
        try:
            info = json.loads((d / INFO).read_text())
            if info.get("kind") == "ivfpq":
                return cls._load_ivfpq(d, info)
            vectors = np.load(d / VECTORS, mmap_mode="r")
            rows = np.load(d / ROWS)
            metadata = pd.read_parquet(d / METADATA)
            index = faiss.read_index(str(d / FAISS)) if info["kind"] != "flat" else flat_index(vectors)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise InfomaxError(f"index {d} is damaged ({exc}); rebuild it with `infomax index --out {d}`") from exc
        if info.get("format") != FORMAT:
            raise InfomaxError(f"index {d} has format {info.get('format')}, this version reads {FORMAT}; rebuild it")
        n = len(vectors)
        if len(rows) != n or len(metadata) != n or index.ntotal != n:
            raise InfomaxError(f"index {d} is inconsistent ({n} vectors, {len(rows)} rows, {len(metadata)} "
                               f"metadata rows, {index.ntotal} indexed); rebuild it")
        return cls(d, info, vectors, rows, metadata, index)

    @classmethod
    def _load_ivfpq(cls, d: Path, info: dict) -> "GalleryIndex":
        """Open an ivfpq folder memory-mapped: nothing grows with the gallery size but page cache."""
        from infomax.index.ivfpq import open_mmap, open_vectors
        from infomax.index.lazy import ArrowMetadata, UnitRows

        if info.get("format") != FORMAT:
            raise InfomaxError(f"index {d} has format {info.get('format')}, this version reads {FORMAT}; rebuild it")
        index = open_mmap(d / FAISS)
        rows = np.load(d / ROWS, mmap_mode="r")
        metadata = ArrowMetadata.open(d / ARROW, d / ID_ORDER)
        source = open_vectors(info["embeddings"])
        n, shape = len(rows), info["fingerprint"]["shape"]
        if list(source.shape) != shape:
            raise InfomaxError(f"index {d} re-ranks with {info['embeddings']}, which now holds {list(source.shape)} "
                               f"vectors instead of {shape}; rebuild the index")
        if len(metadata) != n or index.ntotal != n:
            raise InfomaxError(f"index {d} is inconsistent ({n} rows, {len(metadata)} metadata rows, "
                               f"{index.ntotal} indexed); rebuild it")
        return cls(d, info, UnitRows(source, rows), rows, metadata, index)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def describe(self, positions) -> pd.DataFrame:
        """id, split, label, label_name of some positions (int array), read only for those rows."""
        positions = np.asarray(positions, dtype=np.int64).ravel()
        if self.lazy:
            return self.metadata.take(positions)
        return self.metadata.iloc[positions].reset_index(drop=True)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def vector(self, row: int) -> np.ndarray:
        """The unit-normalized gallery vector at a position (float32 D)."""
        if not 0 <= row < len(self):
            raise InfomaxError(f"row {row} is outside the gallery (0..{len(self) - 1})")
        return np.array(self.vectors[row], dtype=np.float32)

    def check_embeddings(self, emb) -> None:
        """Raise InfomaxError unless `emb` (an Embeddings) is the one this index was built from."""
        recorded = self.info.get("fingerprint")
        current = fingerprint(emb.vectors, id_column(emb))
        if recorded != current:
            raise InfomaxError(
                f"index {self.path} was built from other embeddings (built from {self.info.get('embeddings')}, "
                f"shape {recorded and recorded.get('shape')}; these have shape {current['shape']} and different "
                f"content); rebuild it with `infomax index --embeddings EMB_DIR --out {self.path}`"
            )

    def search(self, vectors: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The k most cosine-similar gallery vectors of each query.

        vectors: float32 Q×D (any length; normalized here). Returns scores float32 Q×k (exact
        cosine similarities, best first) and positions int64 Q×k (-1 / -inf when the gallery is
        smaller than k). Safe to call from several threads at once.
        """
        faiss = require("faiss", "index", "the search index")

        q = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise InfomaxError(f"query vectors have shape {q.shape}, the index holds {self.dim}-dim vectors")
        if k < 1:
            raise InfomaxError(f"k must be at least 1, got {k}")
        q = np.array(q, dtype=np.float32, order="C")  # a copy: normalized in place below
        faiss.normalize_L2(q)  # a zero vector stays zero
        threads = faiss.omp_get_max_threads()  # OpenMP settings belong to the calling thread
        faiss.omp_set_num_threads(1 if len(q) < SMALL_BATCH else threads)
        try:
            return self._search(q, k)
        finally:
            faiss.omp_set_num_threads(threads)
            if self.kind == "ivfpq":
                self.pages.tick()

    def _search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self.kind == "flat":
            scores, pos = self.index.search(q, k)  # exact; -1 beyond the gallery size
            scores[pos < 0] = -np.inf
            return scores, pos
        want = min(len(self), k * int(self.params.get("refine", 1)))
        _, candidates = self.index.search(q, want, params=self._search_parameters(want))  # Q×want, approximate order
        return self._rerank(q, candidates, k)

    def _search_parameters(self, want: int):
        """faiss search settings for `want` results; built once, then only read (safe across threads)."""
        faiss = require("faiss", "index", "the search index")

        key = (want, self.params.get("ef_search"), self.params.get("nprobe"))
        params = self._parameters.get(key)
        if params is None:
            if self.kind == "hnsw":
                params = faiss.SearchParametersHNSW(efSearch=max(int(self.params["ef_search"]), want))
            elif self.kind == "ivfpq":
                from infomax.index.ivfpq import search_parameters

                params = search_parameters(self.params["nprobe"])
            else:
                params = faiss.SearchParametersIVF(nprobe=int(self.params["nprobe"]))
            self._parameters[key] = params
        return params

    def _rerank(self, q: np.ndarray, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact cosine scores of the candidates (Q×C positions, -1 = none), the best k kept."""
        vecs = self.vectors[np.maximum(candidates, 0).ravel()].reshape(*candidates.shape, self.dim)  # Q×C×D
        scores = np.matmul(vecs, q[:, :, None])[:, :, 0]  # Q×C
        scores[candidates < 0] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # Q×min(k, C)
        r = np.arange(len(q))[:, None]
        out_scores = np.full((len(q), k), -np.inf, dtype=np.float32)
        out_pos = np.full((len(q), k), -1, dtype=np.int64)
        out_scores[:, : top.shape[1]] = scores[r, top]
        out_pos[:, : top.shape[1]] = np.where(np.isfinite(scores[r, top]), candidates[r, top], -1)
        return out_scores, out_pos


def build_info(kind: str, params: dict, emb_dir: str | Path, emb, split: str, n: int, seconds: float) -> dict:
    """The index.json record of a new index."""
    return {
        "format": FORMAT,
        "kind": kind,
        "metric": "cosine",
        "params": params,
        "dim": int(emb.vectors.shape[1]),
        "size": int(n),
        "split": split,
        "embeddings": str(Path(emb_dir).resolve()),
        "checkpoint": emb.info.get("checkpoint"),
        "data": emb.info.get("data"),
        "fingerprint": fingerprint(emb.vectors, id_column(emb)),
        "build_seconds": round(seconds, 2),
        "built": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def id_column(emb):
    """The ids of an Embeddings (an array) or of an EmbeddingsOnDisk (read by row)."""
    from infomax.embed.ondisk import EmbeddingsOnDisk

    return emb.ids if isinstance(emb, EmbeddingsOnDisk) else emb.metadata["id"].to_numpy()


def metadata_chunks(emb, rows: np.ndarray, chunk: int = 1 << 18):
    """The metadata of `rows` (ascending) in chunks of DataFrames, in order."""
    if hasattr(emb, "metadata_chunks"):
        return emb.metadata_chunks(rows, chunk)
    return (emb.metadata.iloc[rows[s : s + chunk]] for s in range(0, len(rows), chunk))


def gallery_rows(emb, split: str) -> np.ndarray:
    """The embeddings rows of one split (int64, in order), or of every row for 'all'."""
    if split == "all":
        return np.arange(len(emb), dtype=np.int64)
    rows = emb.rows(split)
    if len(rows) == 0:
        raise InfomaxError(f"the embeddings have no split '{split}' (they have {', '.join(emb.splits)}); "
                           "pass --split with one of them, or --split all")
    return rows


def build_gallery(emb_dir: str | Path, out_dir: str | Path, split: str = "train", kind: str = "auto",
                  params: dict | None = None, threads: int | None = None, emb=None,
                  max_memory: int | None = None, rows: np.ndarray | None = None) -> GalleryIndex:
    """Index one split ('all' for every row) of an embeddings folder into out_dir; returns it loaded.

    params override the kind's defaults (see `infomax.index.build`); max_memory (bytes) steers
    'auto' to ivfpq when an in-memory index would not fit; rows (int64, ascending) index only
    those embeddings rows of the split (one shard of a sharded index).
    """
    from infomax.embed.files import load_embeddings
    from infomax.embed.ondisk import EmbeddingsOnDisk
    from infomax.index.build import build_faiss, choose_kind, default_params, normalize

    start = time.perf_counter()
    emb = emb if emb is not None else EmbeddingsOnDisk(emb_dir)  # the metadata is not read whole
    rows = gallery_rows(emb, split) if rows is None else np.asarray(rows, dtype=np.int64)
    chosen = choose_kind(len(rows), kind, dim=int(emb.vectors.shape[1]), max_memory=max_memory)
    settings = {**default_params(chosen, len(rows), int(emb.vectors.shape[1])), **(params or {})}
    if chosen == "ivfpq":
        return build_ivfpq_gallery(emb_dir, out_dir, emb, rows, split, settings, threads, start)
    if isinstance(emb, EmbeddingsOnDisk):  # an in-memory index holds the metadata too
        emb = load_embeddings(emb_dir)
    unit = normalize(emb.vectors[rows])  # n×D
    index, order = build_faiss(unit, chosen, settings, threads=threads)
    if order is not None:  # the index keeps similar vectors together; so do the stored arrays
        unit, rows = unit[order], rows[order]
    info = build_info(chosen, settings, emb_dir, emb, split, len(rows), time.perf_counter() - start)
    write_index_dir(out_dir, info, unit, rows, emb.metadata.iloc[rows], index)
    return GalleryIndex.load(out_dir)


def build_ivfpq_gallery(emb_dir, out_dir, emb, rows: np.ndarray, split: str, params: dict,
                        threads: int | None, start: float, block: int | None = None) -> GalleryIndex:
    """Write an ivfpq index folder: vectors read and added block by block, metadata written by chunk."""
    faiss = require("faiss", "index", "the search index")
    from infomax.index import ivfpq
    from infomax.index.lazy import write_metadata

    index = ivfpq.train(emb.vectors, rows, params, threads=threads)
    ivfpq.add_blocks(index, emb.vectors, rows, block or ivfpq.BLOCK)
    frames = metadata_chunks(emb, rows)

    def fill(tmp: Path) -> None:
        faiss.write_index(index, str(tmp / FAISS))
        with open(tmp / ROWS, "wb") as f:
            np.save(f, np.asarray(rows, dtype=np.int64))
        write_metadata(tmp / ARROW, frames, tmp / ID_ORDER)
        info = build_info("ivfpq", params, emb_dir, emb, split, len(rows), time.perf_counter() - start)
        (tmp / INFO).write_text(json.dumps(info, indent=2))

    write_folder(out_dir, fill)
    del index
    return GalleryIndex.load(out_dir)
