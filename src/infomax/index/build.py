"""Building the faiss structure behind a gallery index.

Every kind searches L2-normalized vectors, so nearness is cosine similarity:
- flat: exact inner product (faiss IndexFlatIP), the default up to FLAT_MAX vectors;
- hnsw: an HNSW graph over 8-bit scalar-quantized vectors (IndexHNSWSQ, L2 on unit vectors,
  which ranks like cosine), whose top k·refine candidates are re-ranked with the exact float
  vectors; the default above FLAT_MAX;
- ivf: an inverted file (k-means lists) over 8-bit scalar-quantized vectors, re-ranked the same way.
The defaults were tuned on 1,000,000 × 256 real-image features (see docs/search.md).
"""

from __future__ import annotations

import numpy as np

from infomax.errors import InfomaxError

KINDS = ("auto", "flat", "hnsw", "ivf")
FLAT_MAX = 100_000  # exact search stays a few ms per query up to here
HNSW_DEFAULTS = {"M": 32, "ef_construction": 40, "ef_search": 96, "refine": 2}
IVF_DEFAULTS = {"nprobe": 64, "refine": 2}
TRAIN_SAMPLE = 160_000  # vectors used to train quantizers and k-means


def choose_kind(n: int, kind: str = "auto") -> str:
    """The index kind for a gallery of n vectors: `kind` itself unless 'auto'."""
    if kind not in KINDS:
        raise InfomaxError(f"unknown index kind '{kind}'; use one of {', '.join(KINDS)}")
    if kind != "auto":
        return kind
    return "flat" if n <= FLAT_MAX else "hnsw"


def default_params(kind: str, n: int) -> dict:
    """Build and search settings for a kind and gallery size."""
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
    import faiss

    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(np.ascontiguousarray(unit))
    return index


def build_faiss(unit: np.ndarray, kind: str, params: dict, seed: int = 0, threads: int | None = None):
    """The faiss index of a kind over unit vectors (N×D float32); None for 'flat' (built at load)."""
    import faiss

    if kind == "flat":
        return None
    if threads:
        faiss.omp_set_num_threads(threads)
    n, dim = unit.shape
    rng = np.random.default_rng(seed)
    sample = unit if n <= TRAIN_SAMPLE else unit[np.sort(rng.choice(n, TRAIN_SAMPLE, replace=False))]
    if kind == "hnsw":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, int(params["M"]), faiss.METRIC_L2)
        index.hnsw.efConstruction = int(params["ef_construction"])
    elif kind == "ivf":
        index = faiss.index_factory(dim, f"IVF{int(params['nlist'])},SQ8", faiss.METRIC_L2)
        faiss.extract_index_ivf(index).cp.seed = seed
    else:
        raise InfomaxError(f"unknown index kind '{kind}'; use one of {', '.join(KINDS)}")
    index.train(np.ascontiguousarray(sample))
    for start in range(0, n, 262144):  # chunks keep the temporary copies small
        index.add(np.ascontiguousarray(unit[start : start + 262144]))
    return index
