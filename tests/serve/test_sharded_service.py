"""The service over an index written with --shards: it answers as the same index in one folder."""

import numpy as np
import pytest

from infomax.index.sharded import ShardedGallery, build_sharded
from infomax.index.store import GalleryIndex, build_gallery
from infomax.serve.gallery import Gallery
from infomax.serve.service import Query, SearchService


def services(stack, one, sharded):
    """Services over two indexes of the same rows, the same encoder and data."""
    out = []
    for index in (one, sharded):
        out.append(SearchService(stack.embedder, index, Gallery.for_index(stack.data, index, stack.spec)))
    return out


@pytest.mark.parametrize("kind, params", [("flat", None), ("ivfpq", {"nlist": 8, "m": 4, "nprobe": 8})])
def test_sharded_service_answers_as_one_index(stack, tmp_path, kind, params):
    options = {"kind": kind, "params": params, "threads": 1}
    one = build_gallery(stack.emb, tmp_path / "one", split="train", **options)
    build_sharded(stack.emb, tmp_path / "sharded", 3, split="train", **options)
    sharded = ShardedGallery.load(tmp_path / "sharded")
    eager = GalleryIndex.load(stack.index)  # flat, in memory: the ids and labels to compare with
    assert sharded.lazy and [len(s) for s in sharded.shards] == [479, 479, 479]
    plain, split = services(stack, one, sharded)
    try:
        gallery = split.gallery
        assert gallery.lazy and not hasattr(gallery, "ids")
        # rows read through the shards: positions on both sides of each shard border, in any order
        positions = np.array([478, 0, 479, 1436, 958, 957])
        np.testing.assert_array_equal(sharded.embedding_rows[positions], np.asarray(eager.embedding_rows)[positions])
        np.testing.assert_allclose(sharded.vectors[positions], eager.vectors[positions], rtol=1e-6)
        assert sharded.embedding_rows.bounds() == (0, 1436)
        image = stack.embedder.load_image(_png(stack.data.split("test").images[3]))
        for query in (Query(k=7, row=478), Query(k=7, row=1000), Query(k=5, image=image)):
            a, b = plain.search(query), split.search(query)
            if kind == "flat":  # exact scores: the same rows in the same order
                assert b.rows == a.rows
            else:  # each shard scans its own lists: the merged top k is at least as good
                assert np.all(np.array(b.scores) >= np.array(a.scores) - 1e-5)
            assert plain.describe(a)[0]["id"] == eager.ids[a.rows[0]]
            assert [d["id"] for d in split.describe(b)] == [eager.ids[r] for r in b.rows]
            assert [d["label"] for d in split.describe(b)] == [int(eager.metadata["label"][r]) for r in b.rows]
        for row in (0, 478, 479, 1436):
            assert split.row_of(eager.ids[row]) == row
            np.testing.assert_array_equal(gallery.image(row), plain.gallery.image(row))
        assert gallery.row_of("no-such-id") is None
        assert gallery.class_names() == plain.gallery.class_names() == [str(d) for d in range(10)]
    finally:
        plain.close()
        split.close()


def test_service_open_reads_a_sharded_folder(stack, tmp_path):
    build_sharded(stack.emb, tmp_path / "sharded", 2, split="train", kind="flat")
    svc = SearchService.open(str(tmp_path / "sharded"), checkpoint=str(stack.run), data=stack.spec)
    try:
        assert isinstance(svc.index, ShardedGallery) and svc.size == 1437
        hits = svc.search(Query(k=3, row=800))
        scores = GalleryIndex.load(stack.index).vectors[:] @ GalleryIndex.load(stack.index).vector(800)
        scores[800] = -np.inf  # a row query leaves itself out
        assert hits.rows == np.argsort(-scores, kind="stable")[:3].tolist()
    finally:
        svc.close()


def _png(pixels: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)).save(buffer, format="PNG")
    return buffer.getvalue()
