"""Building the faiss structure behind a gallery index.

Every kind searches L2-normalized vectors, so nearness is cosine similarity:
- flat: exact inner product (faiss IndexFlatIP), the default up to FLAT_MAX vectors;
- hnsw: an HNSW graph over 8-bit scalar-quantized vectors (IndexHNSWSQ, L2 on unit vectors,
  which ranks like cosine), whose top k·refine candidates are re-ranked with the exact float
  vectors; the default above FLAT_MAX;
- ivf: an inverted file (k-means lists) over 8-bit scalar-quantized vectors, re-ranked the same way;
- ivfpq: OPQ + IVF-PQ codes kept on disk and memory-mapped, re-ranked with the embeddings'
  own vectors (`infomax.index.ivfpq`); the default above IVFPQ_MIN vectors, or when an hnsw
  index would need more than the memory allowed.
The defaults were tuned on 1,000,000 × 256 real-image features (see docs/search.md).
"""

from __future__ import annotations

import numpy as np

from infomax.errors import InfomaxError
from infomax.extras import require

KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")
FLAT_MAX = 100_000  # exact search stays a few ms per query up to here
IVFPQ_MIN = 4_000_000  # above this, auto builds ivfpq: an hnsw build would hold ≥ 5 GB
HNSW_DEFAULTS = {"M": 32, "ef_construction": 32, "ef_search": 112, "refine": 2}
IVF_DEFAULTS = {"nprobe": 64, "refine": 2}
TRAIN_SAMPLE = 160_000  # vectors used to train quantizers and k-means


def memory_bytes(kind: str, n: int, dim: int) -> int:
    """Peak memory of building a kind in memory (flat, hnsw, ivf): the float32 unit copy
    (4·D bytes a vector), the stored codes (D bytes) and, for hnsw, the graph (2·M int32 links)."""
    links = 8 * HNSW_DEFAULTS["M"] if kind == "hnsw" else 8
    return n * (4 * dim + (dim + links if kind != "flat" else 0)) + 300 * 2**20


def choose_kind(n: int, kind: str = "auto", dim: int = 256, max_memory: int | None = None) -> str:
    """The index kind for a gallery of n vectors: `kind` itself unless 'auto'.

    auto: flat up to FLAT_MAX, hnsw up to IVFPQ_MIN, ivfpq above, or ivfpq as soon as the
    in-memory build would need more than max_memory bytes.
    """
    if kind not in KINDS:
        raise InfomaxError(f"unknown index kind '{kind}'; use one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    small = "flat" if n <= FLAT_MAX else "hnsw"
    if n > IVFPQ_MIN or (max_memory is not None and memory_bytes(small, n, dim) > max_memory):
        return "ivfpq"
    return small


def default_params(kind: str, n: int, dim: int = 256) -> dict:
    """Build and search settings for a kind and gallery size."""
    if kind == "ivfpq":
        from infomax.index.ivfpq import ivfpq_params

        return ivfpq_params(n, dim)
    if kind == "hnsw":
        return dict(HNSW_DEFAULTS)
    if kind == "ivf":
        nlist = int(2 ** np.clip(np.round(np.log2(4 * np.sqrt(max(n, 1)))), 0, 16))  # ≈ 4·√n lists
        nlist = max(1, min(nlist, n // 39 or 1))  # k-means wants ≥ 39 points per list
        return {"nlist": nlist, **IVF_DEFAULTS, "nprobe": min(IVF_DEFAULTS["nprobe"], nlist)}
    return {}


def normalize(vectors: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """float32 copy of N×D vectors scaled to unit length (a zero vector stays zero)."""
    out = np.empty(vectors.shape, dtype=np.float32)
    for start in range(0, len(vectors), chunk):
        block = np.asarray(vectors[start : start + chunk], dtype=np.float32)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + chunk] = block / np.maximum(norms, 1e-12)
    return out


def flat_index(unit: np.ndarray):
    """Exact inner-product index over unit vectors (N×D float32)."""
    faiss = require("faiss", "index", "the search index")

    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(np.ascontiguousarray(unit))
    return index


def locality_order(unit: np.ndarray, seed: int = 0) -> np.ndarray:
    """A permutation of the rows (int64 N) that stores similar vectors next to each other.

    Rows are grouped by their nearest of up to 1,024 k-means centroids (trained on a sample).
    An HNSW search visits vectors close to the query, so this layout turns scattered memory
    reads into nearby ones: about 25% faster single queries on 1,000,000 vectors.
    """
    faiss = require("faiss", "index", "the search index")

    n, dim = unit.shape
    clusters = int(min(1024, max(1, n // 1000)))
    if clusters == 1:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    sample = unit[np.sort(rng.choice(n, min(n, 64 * clusters), replace=False))]
    kmeans = faiss.Kmeans(dim, clusters, niter=10, seed=seed, spherical=True)
    kmeans.train(np.ascontiguousarray(sample))
    _, assign = kmeans.index.search(np.ascontiguousarray(unit), 1)
    return np.argsort(assign[:, 0], kind="stable").astype(np.int64)


def build_faiss(unit: np.ndarray, kind: str, params: dict, seed: int = 0, threads: int | None = None):
    """(faiss index, order) for a kind over unit vectors (N×D float32).

    'flat' gives (None, None): it is rebuilt from the vectors at load. 'hnsw' gives the
    permutation its entries were put in (`locality_order`): position i of the index holds
    input row order[i], so the caller stores its vectors and ids in that order too.
    """
    faiss = require("faiss", "index", "the search index")

    if kind == "flat":
        return None, None
    if threads:
        faiss.omp_set_num_threads(threads)
    n, dim = unit.shape
    rng = np.random.default_rng(seed)
    sample = unit if n <= TRAIN_SAMPLE else unit[np.sort(rng.choice(n, TRAIN_SAMPLE, replace=False))]
    if kind == "hnsw":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, int(params["M"]), faiss.METRIC_L2)
        index.hnsw.efConstruction = int(params["ef_construction"])
    elif kind == "ivfpq":
        raise InfomaxError("ivfpq indexes are built from an embeddings folder: use `infomax index --kind ivfpq`")
    elif kind == "ivf":
        index = faiss.index_factory(dim, f"IVF{int(params['nlist'])},SQ8", faiss.METRIC_L2)
        faiss.extract_index_ivf(index).cp.seed = seed
    else:
        raise InfomaxError(f"unknown index kind '{kind}'; use one of {', '.join(KINDS)}")
    index.train(np.ascontiguousarray(sample))
    for start in range(0, n, 262144):  # chunks keep the temporary copies small
        index.add(np.ascontiguousarray(unit[start : start + 262144]))
    if kind != "hnsw":
        return index, None
    order = locality_order(unit, seed)
    index.permute_entries(order)
    return index, order
