"""The ivfpq kind: block-wise build, memory-mapped search, re-ranking, metadata by row."""

import numpy as np
import pytest

from infomax.index import ivfpq
from infomax.index.store import GalleryIndex, build_gallery
from tests.index.test_index import clustered, exact, recall, save

N, DIM = 3050, 16  # 3,000 train + 50 test vectors
PARAMS = {"nlist": 16, "m": 4, "nprobe": 4, "refine": 10}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ivfpq")
    x = clustered(N, DIM)
    emb = save(tmp, x)
    return x, emb, build_gallery(emb, tmp / "idx", kind="ivfpq", params=PARAMS, threads=1), tmp


def codes(index):
    """Every inverted list's ids and codes (bytes), list by list."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    out = []
    for i in range(ivf.nlist):
        size = lists.list_size(i)
        ids = faiss.rev_swig_ptr(lists.get_ids(i), size).copy()
        code = faiss.rev_swig_ptr(lists.get_codes(i), size * lists.code_size).copy()
        out.append((ids, code))
    return out


def test_blocks_in_small_pieces_equal_one_build(built):
    import faiss

    x, _, index, _ = built
    rows = np.arange(N - 50)
    whole = ivfpq.train(x, rows, PARAMS, threads=1)
    pieces = faiss.clone_index(whole)  # the same trained quantizers
    ivfpq.add_blocks(whole, x, rows, block=len(rows))
    ivfpq.add_blocks(pieces, x, rows, block=97)
    for (ids_a, codes_a), (ids_b, codes_b) in zip(codes(whole), codes(pieces)):
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_array_equal(codes_a, codes_b)
    q = np.ascontiguousarray(x[-50:] / np.linalg.norm(x[-50:], axis=1, keepdims=True))
    params = ivfpq.search_parameters(4)
    np.testing.assert_array_equal(whole.search(q, 10, params=params)[1], pieces.search(q, 10, params=params)[1])
    # and the codes of the index folder (blocks of 65,536, written, then memory-mapped) are the same
    for (ids_a, codes_a), (ids_b, codes_b) in zip(codes(whole), codes(index.index)):
        np.testing.assert_array_equal(ids_a, ids_b)
        np.testing.assert_array_equal(codes_a, codes_b)


def test_memory_mapped_search_equals_in_memory(built):
    import faiss

    x, _, index, tmp = built
    in_memory = faiss.read_index(str(tmp / "idx" / "index.faiss"))
    lists = faiss.downcast_InvertedLists(faiss.extract_index_ivf(index.index).invlists)
    assert type(lists).__name__ == "OnDiskInvertedLists"  # the lists stay in the file
    q = np.ascontiguousarray(x[-50:] / np.linalg.norm(x[-50:], axis=1, keepdims=True))
    params = ivfpq.search_parameters(4)
    d_mem, i_mem = in_memory.search(q, 20, params=params)
    d_map, i_map = index.index.search(q, 20, params=params)
    np.testing.assert_array_equal(i_map, i_mem)
    np.testing.assert_allclose(d_map, d_mem, atol=1e-5)  # mapped: no precomputed table, same sums


def test_reranking_scores_are_exact_and_improve_recall(built):
    x, _, index, _ = built
    q = x[-50:]
    ref_scores, ref_pos = exact(x[: N - 50], q, 10)  # float64 reference
    scores, pos = index.search(q, 10)
    hit = pos >= 0
    g = x[: N - 50].astype(np.float64) / np.linalg.norm(x[: N - 50], axis=1, keepdims=True)
    qn = q.astype(np.float64) / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(scores[hit], np.einsum("qd,qd->q", g[pos][hit], np.repeat(qn, 10, 0).reshape(50, 10, -1)[hit]), atol=1e-5)
    index.params["refine"] = 1  # the PQ ranking alone
    try:
        _, pos_pq = index.search(q, 10)
    finally:
        index.params["refine"] = PARAMS["refine"]
    r_pq, r_rerank = recall(pos_pq, ref_pos), recall(pos, ref_pos)
    assert r_rerank >= r_pq and r_rerank >= 0.9, (r_pq, r_rerank)


def test_metadata_by_row(built):
    x, emb, index, tmp = built
    reopened = GalleryIndex.load(tmp / "idx")
    assert reopened.lazy and len(reopened) == N - 50
    rows = np.array([2999, 0, 17, 17, 1234])
    meta = reopened.describe(rows)
    assert meta["id"].tolist() == [f"img{r}" for r in rows]
    assert meta["split"].tolist() == ["train"] * 5
    assert reopened.ids[1234] == "img1234" and reopened.ids[-1] == "img2999"
    assert reopened.metadata.row_of("img1234") == 1234 and reopened.metadata.row_of("img2999") == 2999
    assert reopened.metadata.row_of("img3000") is None  # a test row: not in the gallery
    np.testing.assert_allclose(reopened.vector(5), x[5] / np.linalg.norm(x[5]), rtol=1e-6)
    np.testing.assert_allclose(reopened.vectors[[7, 3]], x[[7, 3]] / np.linalg.norm(x[[7, 3]], axis=1, keepdims=True), rtol=1e-6)


def test_auto_picks_ivfpq_by_size_and_memory():
    from infomax.index.build import choose_kind

    assert choose_kind(1_000_000) == "hnsw" and choose_kind(50_000) == "flat"
    assert choose_kind(10_000_000) == "ivfpq"
    # hnsw at 1M × 256: 1M × (1,024 + 256 + 256) B + 300 MiB ≈ 1.85 GB
    assert choose_kind(1_000_000, max_memory=2 << 30) == "hnsw"
    assert choose_kind(1_000_000, max_memory=1 << 30) == "ivfpq"


def _mapped_rss_kb(prefix: str) -> int:
    """Resident kB of this process's mappings of files under prefix (from /proc/self/smaps)."""
    total, inside = 0, False
    for line in open("/proc/self/smaps"):
        first = line.split(None, 1)[0]
        if "-" in first and not first.endswith(":"):  # a mapping's header line
            inside = line.split(None, 5)[5].strip().startswith(prefix) if len(line.split(None, 5)) == 6 else False
        elif inside and first == "Rss:":
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_page_budget_releases_the_index_pages_and_answers_stay(built):
    from infomax.index.pages import PageBudget

    x, _, _, tmp = built
    index = GalleryIndex.load(tmp / "idx")
    prefix = str((tmp / "idx").resolve()) + "/"
    before = index.search(x[-50:], 10)
    assert _mapped_rss_kb(prefix) > 0  # the lists, rows and metadata read so far
    index.pages = PageBudget(tmp / "idx", budget=0, every=1)
    again = index.search(x[-50:], 10)  # ... then released after this search
    assert _mapped_rss_kb(prefix) == 0
    np.testing.assert_array_equal(again[1], before[1])
    np.testing.assert_array_equal(index.search(x[-50:], 10)[1], before[1])  # read back from the file cache
    index.pages = PageBudget(tmp / "idx", budget=1 << 40, every=1)
    index.search(x[-50:], 10)
    assert _mapped_rss_kb(prefix) > 0  # under the budget nothing is released


def test_metadata_take_reads_rows_from_their_own_batches(tmp_path):
    # written in batches of 7 rows: positions across batches, repeated and out of order come back
    # as pandas' iloc gives them
    import pandas as pd

    from infomax.index.lazy import ArrowMetadata, write_metadata

    n = 45
    frame = pd.DataFrame({"id": [f"x{i:02d}" for i in range(n)], "split": ["train"] * n,
                          "label": pd.array([i % 4 if i % 5 else None for i in range(n)], dtype="Int64"),
                          "label_name": [f"c{i % 4}" for i in range(n)]})
    write_metadata(tmp_path / "m.arrow", (frame.iloc[s : s + 7] for s in range(0, n, 7)), tmp_path / "o.npy")
    meta = ArrowMetadata.open(tmp_path / "m.arrow")
    assert len(meta.batches) == 7
    positions = np.array([44, 0, 8, 8, 13, 7, 21, 6, 43, 0])
    got = meta.take(positions)
    want = frame.iloc[positions].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert meta.records(positions) == [
        {"id": r.id, "split": r.split, "label": None if pd.isna(r.label) else int(r.label), "label_name": r.label_name}
        for r in want.itertuples()]
    assert meta.take(np.array([], dtype=np.int64)).empty and meta.records([]) == []
    with pytest.raises(IndexError):
        meta.take([n])
