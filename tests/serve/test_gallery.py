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
    assert gallery.png(4) is gallery.png(4)  # cached
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
