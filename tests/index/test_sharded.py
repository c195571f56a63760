"""A gallery split into shards by row range: searched together it answers as one index."""

import numpy as np
import pytest

from infomax.cli import main
from infomax.errors import InfomaxError
from infomax.index.sharded import ShardedGallery, build_sharded, open_index
from infomax.index.store import build_gallery
from tests.index.test_index import clustered, exact, save


def test_flat_shards_equal_one_flat_index_and_float64(tmp_path):
    vectors = clustered(650, 12)
    emb = save(tmp_path, vectors)  # train: rows 0..599
    one = build_gallery(emb, tmp_path / "one", kind="flat")
    sharded = build_sharded(emb, tmp_path / "three", 3, kind="flat")
    assert isinstance(open_index(tmp_path / "three"), ShardedGallery) and len(sharded) == 600
    assert [len(s) for s in sharded.shards] == [200, 200, 200] and sharded.offsets.tolist() == [0, 200, 400]
    queries = vectors[600:]  # the test rows, not in the gallery
    s1, p1 = one.search(queries, 15)
    s3, p3 = sharded.search(queries, 15)
    np.testing.assert_array_equal(p3, p1)
    np.testing.assert_allclose(s3, s1, rtol=0, atol=1e-6)
    ref_scores, ref_pos = exact(vectors[:600], queries, 15)  # float64 reference
    np.testing.assert_array_equal(p3, ref_pos)
    np.testing.assert_allclose(s3, ref_scores, rtol=0, atol=1e-5)
    # positions describe the right images, read from the shard that holds them
    picks = np.array([599, 0, 200, 401, 199])
    assert sharded.describe(picks)["id"].tolist() == [f"img{p}" for p in picks]
    assert [sharded.ids[p] for p in (0, 250, 599)] == ["img0", "img250", "img599"]
    np.testing.assert_array_equal(sharded.embedding_rows_of(picks), picks)
    np.testing.assert_allclose(sharded.vector(401), vectors[401] / np.linalg.norm(vectors[401]), atol=1e-6)


def test_a_gallery_smaller_than_k_and_bad_shard_counts(tmp_path):
    vectors = clustered(62, 6)
    emb = save(tmp_path, vectors)  # 12 train rows
    sharded = build_sharded(emb, tmp_path / "idx", 5, kind="flat")  # shards of 3, 3, 2, 2, 2
    scores, pos = sharded.search(vectors[:2], 20)
    assert (pos[:, :12] >= 0).all() and (pos[:, 12:] == -1).all() and np.isneginf(scores[:, 12:]).all()
    assert sorted(pos[0, :12].tolist()) == list(range(12))
    with pytest.raises(InfomaxError, match="--shards 13: give 1 to 12"):
        build_sharded(emb, tmp_path / "bad", 13)
    with pytest.raises(InfomaxError, match="outside the gallery"):
        sharded.vector(12)


def test_the_commands(tmp_path, capsys):
    vectors = clustered(450, 8)
    emb = save(tmp_path, vectors)
    assert main(["index", "--embeddings", str(emb), "--out", str(tmp_path / "idx"), "--shards", "4", "--kind", "hnsw"]) == 0
    assert "index: 400 vectors" in capsys.readouterr().out
    assert main(["index", "--embeddings", str(emb), "--out", str(tmp_path / "idx"), "--shards", "2"]) == 0  # rebuilt in place
    capsys.readouterr()
    assert main(["search", "--index", str(tmp_path / "idx"), "--row", "7", "--k", "5", "--json", "-",
                 "--embeddings", str(emb)]) == 0
    import json

    found = json.loads(capsys.readouterr().out)["results"][0]["neighbours"]
    unit = vectors[:400] / np.linalg.norm(vectors[:400], axis=1, keepdims=True)
    ref = [int(p) for p in np.argsort(-(unit @ unit[7]), kind="stable") if p != 7][:5]
    assert [n["row"] for n in found] == ref and [n["id"] for n in found] == [f"img{p}" for p in ref]
