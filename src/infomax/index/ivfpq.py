"""The ivfpq kind: OPQ + IVF-PQ codes on disk, for galleries of 10 million vectors and more.

Build, in memory that grows only with the codes (M bytes + an 8-byte id per vector):
1. train OPQ rotation, k-means lists and product quantizer on a sample of the vectors, read by
   row (at most TRAIN_MAX rows);
2. add the vectors block by block (BLOCK rows at a time, each normalized on its own);
3. write the index (faiss `write_index`); the search opens it with
   IO_FLAG_MMAP | IO_FLAG_READ_ONLY, so the inverted lists stay in the file and the pages a
   search reads are cached by the system, not owned by the process.

Search: the nprobe nearest lists are scanned with the PQ codes, the best k·refine candidates
are re-ranked with their exact vectors, read by row from the embeddings folder (memory-mapped).
The index keeps no copy of the vectors: it records the embeddings folder and its fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infomax.errors import InfomaxError
from infomax.extras import require
from infomax.index.build import normalize

BLOCK = 65536  # rows added per step: 64 MiB of float32 at 256 dims
TRAIN_MAX = 262_144  # vectors read for training: 256 MiB at 256 dims
IVFPQ_DEFAULTS = {"nprobe": 32, "refine": 10}


def ivfpq_params(n: int, dim: int) -> dict:
    """Settings for n vectors of dim: ≈ 2·√n lists (a power of two, at most 4,096: ≥ 39 training
    points each), dim/4 PQ bytes (4 dims a byte, 8-bit codes)."""
    nlist = int(2 ** np.clip(np.round(np.log2(2 * np.sqrt(max(n, 1)))), 6, 16))
    while nlist > 1 and 39 * nlist > min(n, TRAIN_MAX):
        nlist //= 2
    m = next(m for m in (dim // 4, dim // 2, dim, 1) if m >= 1 and dim % m == 0 and m <= 256)
    return {"nlist": nlist, "m": m, **IVFPQ_DEFAULTS, "nprobe": min(IVFPQ_DEFAULTS["nprobe"], nlist)}


def factory_string(params: dict, dim: int) -> str:
    return f"OPQ{int(params['m'])}_{dim},IVF{int(params['nlist'])},PQ{int(params['m'])}"


def train(vectors, rows: np.ndarray, params: dict, seed: int = 0, threads: int | None = None):
    """An empty trained OPQ + IVF-PQ index over the unit vectors of `rows` (a bounded sample)."""
    faiss = require("faiss", "index", "the search index")

    if threads:
        faiss.omp_set_num_threads(threads)
    dim = int(vectors.shape[1])
    if dim % int(params["m"]):
        raise InfomaxError(f"ivfpq needs m dividing the {dim} dims, got m={params['m']}; pick another m")
    rng = np.random.default_rng(seed)
    sample = rows if len(rows) <= TRAIN_MAX else np.sort(rng.choice(rows, TRAIN_MAX, replace=False))
    index = faiss.index_factory(dim, factory_string(params, dim), faiss.METRIC_L2)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.seed, ivf.cp.niter = seed, 10
    ivf.do_polysemous_training = False  # Hamming-ordered codes serve no purpose here and take minutes
    ivf.pq.cp.seed, ivf.pq.cp.niter, ivf.pq.cp.max_points_per_centroid = seed, 10, 64  # 16,384 points a byte
    opq = faiss.downcast_VectorTransform(index.chain.at(0))
    opq.niter, opq.max_train_points = 10, 32768  # OPQ trains a PQ per step: bounded, as above
    index.train(normalize(read_rows(vectors, np.asarray(sample, dtype=np.int64))))
    return index


def read_rows(vectors, rows: np.ndarray, window: int = BLOCK) -> np.ndarray:
    """vectors[rows] for ascending rows spread over the file, read one window of `window` rows
    at a time, each window's pages released after it: the process's RSS holds one window of the
    mapping, not every page the rows touch (each read maps its neighbours too)."""
    out = np.empty((len(rows), int(vectors.shape[1])), dtype=np.float32)
    cuts = np.flatnonzero(np.diff(rows // window)) + 1
    for at in np.split(np.arange(len(rows)), cuts):
        out[at] = vectors[rows[at]]
        _release(vectors)
    return out


def add_blocks(index, vectors, rows: np.ndarray, block: int = BLOCK) -> None:
    """Add the unit vectors of `rows` in order (position i = rows[i]), `block` rows at a time."""
    for start in range(0, len(rows), block):
        index.add(normalize(vectors[rows[start : start + block]]))
        _release(vectors)


def _release(vectors) -> None:
    """Pages of memory-mapped vectors read so far leave the process's RSS (ShardedArray.release)."""
    release = getattr(vectors, "release", None)
    if release is not None:
        release()


def open_mmap(path: str | Path):
    """The index file memory-mapped read-only: the inverted lists are not read into memory.

    IVF-PQ's precomputed distance table (nlist × M × 256 floats, 512 MiB at 8,192 lists of 64
    bytes) is not built: the per-list tables a search computes cost less than a microsecond each.
    """
    faiss = require("faiss", "index", "the search index")

    limit = faiss.cvar.precomputed_table_max_bytes
    faiss.cvar.precomputed_table_max_bytes = 0
    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    finally:
        faiss.cvar.precomputed_table_max_bytes = limit


def search_parameters(nprobe: int):
    """Per-call settings for an OPQ + IVF index (thread-safe: nothing is written into the index)."""
    faiss = require("faiss", "index", "the search index")

    return faiss.SearchParametersPreTransform(index_params=faiss.SearchParametersIVF(nprobe=int(nprobe)))


def open_vectors(emb_dir: str | Path):
    """The N×D vectors of an embeddings folder, memory-mapped (its metadata left unread)."""
    from infomax.embed.files import load_vectors

    try:
        return load_vectors(emb_dir)
    except InfomaxError as exc:
        raise InfomaxError(f"the ivfpq index re-ranks with the vectors of {emb_dir}, which cannot be read ({exc}); "
                           "keep the embeddings folder in place or rebuild the index") from exc


def estimate_bytes(n: int, dim: int, params: dict | None = None) -> dict:
    """Memory and disk of an ivfpq index of n vectors: codes + ids, lists, quantizer, build sample."""
    params = params or ivfpq_params(n, dim)
    codes = n * (int(params["m"]) + 8)  # PQ code + int64 id per vector
    return {"disk": codes + n * 8 + int(params["nlist"]) * dim * 4 + n * 80,  # + rows, metadata ≈ 80 B
            "build": 2 * codes + min(n, TRAIN_MAX) * dim * 4 * 2 + BLOCK * dim * 8 + 300 * 2**20}
