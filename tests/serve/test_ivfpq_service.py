"""The service over an ivfpq index: metadata read by row, ids found without an in-memory map."""

import numpy as np

from infomax.index.store import GalleryIndex, build_gallery
from infomax.serve.gallery import Gallery
from infomax.serve.service import Query, SearchService


def test_service_answers_from_a_lazy_ivfpq_index(stack, tmp_path):
    build_gallery(stack.emb, tmp_path / "ivfpq", split="train", kind="ivfpq", params={"nlist": 8, "m": 4}, threads=1)
    index = GalleryIndex.load(tmp_path / "ivfpq")
    eager = GalleryIndex.load(stack.index)  # the flat index of the same rows: ids to compare with
    gallery = Gallery.for_index(stack.data, index, stack.spec)
    assert index.lazy and gallery.lazy and not hasattr(gallery, "ids")  # no id list held in memory
    svc = SearchService(stack.embedder, index, gallery)
    try:
        hits = svc.search(Query(k=5, row=10))
        scores, pos = index.search(index.vector(10)[None], 6)
        expected = [int(p) for p in pos[0] if p != 10][:5]
        assert hits.rows == expected
        described = svc.describe(hits)
        assert [d["id"] for d in described] == [eager.ids[r] for r in expected]
        assert [d["label"] for d in described] == [int(eager.metadata["label"][r]) for r in expected]
        some = eager.ids[123]
        assert svc.row_of(some) == 123 and gallery.row_of("no-such-id") is None
        assert gallery.class_names() == sorted({n for n in eager.metadata["label_name"] if n})
    finally:
        svc.close()
