"""Gallery rows map to the data set's images through the index; a mismatched data set is refused."""

import numpy as np
import pytest

from infomax.errors import InfomaxError
from infomax.index.store import GalleryIndex, build_gallery
from infomax.serve.gallery import Gallery


def test_gallery_rows_follow_the_index(stack, tmp_path):
    index = build_gallery(stack.emb, tmp_path / "test-index", split="test")  # rows 1437.. of the embeddings
    gallery = Gallery.for_index(stack.data, index, stack.spec)
    test = stack.data.splits["test"]
    assert len(gallery) == len(test) and gallery.describe(4)["id"] == test.ids[4]
    np.testing.assert_array_equal(gallery.image(4), test.images[4])
    assert gallery.row_of(test.ids[9]) == 9 and gallery.row_of("nope") is None
    assert gallery.picture(4) is gallery.picture(4)  # cached
    with pytest.raises(IndexError):
        gallery.image(len(test))


def test_a_data_set_of_other_images_is_refused(stack):
    index = GalleryIndex.load(stack.index)
    splits = dict(stack.data.splits)
    other = type(stack.data)(stack.data.kind, stack.data.path, {"train": splits["test"], "test": splits["train"]},
                             stack.data.class_names)
    with pytest.raises(InfomaxError, match="does not match the index: gallery row 0"):
        Gallery.for_index(other, index, "swapped")
    small = type(stack.data)(stack.data.kind, stack.data.path, {"test": splits["test"]}, stack.data.class_names)
    with pytest.raises(InfomaxError, match="holds 360 images but the index refers to image 1436"):
        Gallery.for_index(small, index, "small")


def test_an_approximate_index_answers_like_infomax_search(stack, tmp_path):
    """Each query is scanned with its own k, which sets how widely an HNSW index looks."""
    from infomax.index.search import search_rows
    from infomax.serve.service import Query, SearchService

    index = build_gallery(stack.emb, tmp_path / "hnsw", split="train", kind="hnsw")
    service = SearchService(stack.embedder, index, Gallery.for_index(stack.data, index, stack.spec))
    try:
        image = stack.data.splits["test"].images[3]
        futures = [service.submit(Query(k=k, image=image)) for k in (1, 7, 40)] + \
                  [service.submit(Query(k=k, row=12)) for k in (2, 9)]
        answers = [f.result(timeout=30) for f in futures]
        vector = stack.embedder.embed(image[None])
        for k, got in zip((1, 7, 40), answers):
            scores, rows = index.search(vector, k)
            assert got.rows == rows[0].tolist()
            np.testing.assert_allclose(got.scores, scores[0], atol=1e-6)
        for k, got in zip((2, 9), answers[3:]):
            scores, rows = search_rows(index, [12], k)
            assert got.rows == rows[0].tolist()
    finally:
        service.close()
