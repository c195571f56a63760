import json
import threading

import numpy as np
import pytest

from infomax.cli import main
from infomax.embed.files import load_embeddings
from infomax.errors import InfomaxError
from infomax.index.build import choose_kind, normalize
from infomax.index.search import search_rows
from infomax.index.store import GalleryIndex, build_gallery
from tests.eval.helpers import digits_embeddings


def clustered(n, dim, seed=0):
    """Vectors around 40 random centres: neighbours are well defined, as in real embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    return (centres[rng.integers(0, 40, n)] + 0.4 * rng.normal(size=(n, dim))).astype(np.float32)


def save(tmp_path, vectors, name="emb"):
    import pandas as pd

    from infomax.embed.files import Embeddings, save_embeddings

    n = len(vectors)
    meta = pd.DataFrame({"id": [f"img{i}" for i in range(n)], "split": ["train"] * (n - 50) + ["test"] * 50,
                         "label": pd.array([pd.NA] * n, dtype="Int64"), "label_name": [""] * n})
    save_embeddings(tmp_path / name, Embeddings(vectors, meta, {"data": "x", "checkpoint": None}))
    return tmp_path / name


def exact(gallery, queries, k):
    """Reference in float64 numpy: positions and cosine scores, best first."""
    g = gallery.astype(np.float64) / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = queries.astype(np.float64) / np.linalg.norm(queries, axis=1, keepdims=True)
    sims = q @ g.T
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, order, 1), order


def recall(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


def test_flat_index_equals_exact_search(tmp_path):
    x = np.random.default_rng(0).normal(size=(550, 16)).astype(np.float32)
    index = build_gallery(save(tmp_path, x), tmp_path / "idx", split="train")
    assert index.kind == "flat" and len(index) == 500
    q = np.random.default_rng(1).normal(size=(20, 16)).astype(np.float32)
    scores, pos = index.search(q, 7)
    ref_scores, ref_pos = exact(x[:500], q, 7)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert index.ids[pos[0, 0]] == f"img{ref_pos[0, 0]}"
    np.testing.assert_array_equal(index.embedding_rows[:3], [0, 1, 2])
    np.testing.assert_allclose(index.vector(5), x[5] / np.linalg.norm(x[5]), rtol=1e-6)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_have_high_recall(tmp_path, kind):
    x = clustered(4050, 32)
    index = build_gallery(save(tmp_path, x), tmp_path / "idx", split="train", kind=kind)
    assert index.kind == kind and (tmp_path / "idx" / "index.faiss").is_file()
    queries = x[4000:]
    scores, pos = index.search(queries, 10)
    assert (pos >= 0).all()
    if kind == "hnsw":  # stored in locality order, not the folder's
        assert not np.array_equal(index.embedding_rows, np.arange(4000))
        assert sorted(index.embedding_rows.tolist()) == list(range(4000))
    rows = index.embedding_rows[pos]  # gallery positions -> rows of the embeddings folder
    assert [index.ids[p] for p in pos[0]] == [f"img{r}" for r in rows[0]]
    ref_scores, ref_rows = exact(x[:4000], queries, 10)
    assert recall(rows, ref_rows) >= 0.95
    unit = normalize(x[:4000])
    np.testing.assert_allclose(scores, np.einsum("qkd,qd->qk", unit[rows], normalize(queries)), atol=1e-5)
    np.testing.assert_allclose(index.vector(int(pos[0, 0])), unit[rows[0, 0]], rtol=1e-6)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_kind_choice_and_small_galleries(tmp_path):
    assert choose_kind(1000) == "flat" and choose_kind(2_000_000) == "hnsw" and choose_kind(10, "ivf") == "ivf"
    with pytest.raises(InfomaxError, match="unknown index kind"):
        choose_kind(10, "lsh")
    x = np.random.default_rng(0).normal(size=(55, 8)).astype(np.float32)
    index = build_gallery(save(tmp_path, x), tmp_path / "idx", split="train")
    scores, pos = index.search(x[:1], 10)
    assert pos[0, 5:].tolist() == [-1] * 5 and np.isneginf(scores[0, 5:]).all()
    with pytest.raises(InfomaxError, match="holds 8-dim"):
        index.search(np.ones((1, 16), np.float32), 3)


def test_search_by_row_leaves_the_row_out(tmp_path):
    x = clustered(600, 8)
    index = build_gallery(save(tmp_path, x), tmp_path / "idx", split="all")
    scores, pos = search_rows(index, [3, 100], 5)
    assert not (pos == np.array([[3], [100]])).any()
    ref_scores, ref_pos = exact(x, x[[3, 100]], 6)
    np.testing.assert_array_equal(pos, ref_pos[:, 1:])
    with pytest.raises(InfomaxError, match="outside the gallery"):
        search_rows(index, [600], 5)


def test_an_index_from_other_embeddings_is_detected(tmp_path, capsys):
    a = save(tmp_path, clustered(300, 8, seed=1), "a")
    b = save(tmp_path, clustered(300, 8, seed=2), "b")
    assert main(["index", "--embeddings", str(a), "--out", str(tmp_path / "idx")]) == 0
    index = GalleryIndex.load(tmp_path / "idx")
    index.check_embeddings(load_embeddings(a))
    with pytest.raises(InfomaxError, match="built from other embeddings"):
        index.check_embeddings(load_embeddings(b))
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "idx"), "--row", "0", "--embeddings", str(b)]) == 2
    err = capsys.readouterr().err
    assert "built from other embeddings" in err and "Traceback" not in err


def test_index_folder_is_replaced_whole_and_other_folders_are_kept(tmp_path, capsys):
    emb = save(tmp_path, clustered(300, 8))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    assert main(["index", "--embeddings", str(emb), "--out", str(tmp_path / "notes")]) == 2
    assert "not an index folder" in capsys.readouterr().err and (tmp_path / "notes" / "a.txt").exists()
    assert main(["index", "--embeddings", str(emb), "--out", str(tmp_path / "idx")]) == 0
    assert main(["index", "--embeddings", str(emb), "--out", str(tmp_path / "idx"), "--kind", "hnsw", "--split", "all"]) == 0
    info = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert info["kind"] == "hnsw" and info["size"] == 300
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_search_command_json_and_text(tmp_path, capsys):
    emb, _ = digits_embeddings(tmp_path / "emb")
    assert main(["index", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "idx")]) == 0
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "idx"), "--row", "4", "--k", "3", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)["results"][0]
    assert [n["rank"] for n in found["neighbours"]] == [1, 2, 3]
    assert all(n["row"] != 4 and n["id"].startswith("digits/") for n in found["neighbours"])
    assert main(["search", "--index", str(tmp_path / "idx"), "--row", "4", "--k", "2"]) == 0
    assert "row 4 (digits/4)" in capsys.readouterr().out
    assert main(["search", "--index", str(tmp_path / "nothing"), "--row", "1"]) == 2
    assert main(["search", "--index", str(tmp_path / "idx")]) == 2


def test_concurrent_searches_agree(tmp_path):
    x = clustered(3000, 16)
    index = build_gallery(save(tmp_path, x), tmp_path / "idx", split="all", kind="hnsw")
    queries = clustered(64, 16, seed=5)
    expected = [index.search(q[None], 10)[1] for q in queries]
    errors, results = [], {}

    def worker(t):
        try:
            results[t] = [index.search(q[None], 10)[1] for q in queries]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for found in results.values():
        for a, b in zip(found, expected):
            np.testing.assert_array_equal(a, b)


def test_search_k_is_bounded_by_the_gallery_before_allocating(tmp_path, capsys):
    import tracemalloc

    digits_embeddings(tmp_path / "emb")
    assert main(["index", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "idx")]) == 0
    n = len(GalleryIndex.load(tmp_path / "idx"))
    capsys.readouterr()
    tracemalloc.start()
    try:
        assert main(["search", "--index", str(tmp_path / "idx"), "--row", "0", "--row", "5", "--k", str(10**9),
                     "--json"]) == 0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20  # two 10**9-wide rows of scores and positions would be 24 GB
    out = capsys.readouterr()
    assert f"--k {10**9} is more than the {n:,} gallery images" in out.err
    reply = json.loads(out.out)
    assert reply["k"] == n
    for query, row in zip(reply["results"], (0, 5)):  # every other gallery row, once, best first
        rows = [nb["row"] for nb in query["neighbours"]]
        assert sorted(rows) == [r for r in range(n) if r != row]
        scores = [nb["score"] for nb in query["neighbours"]]
        assert scores == sorted(scores, reverse=True)
    assert main(["search", "--index", str(tmp_path / "idx"), "--row", "0", "--k", "0"]) == 2
