"""scikit-learn's bundled digits: offline, upscaled, grayscale, a fixed stratified 80/20 split."""

import numpy as np
from sklearn.datasets import load_digits

from infomax.data import load


def test_default_digits():
    ds = load("digits", progress=False)
    train, test = ds.splits["train"], ds.splits["test"]
    assert (len(train), len(test)) == (1437, 360)
    assert ds.image_shape == (1, 32, 32) and ds.class_names == [str(i) for i in range(10)]
    assert ds.normalization == "center" and ds.options["size"] == 32
    counts = np.bincount(test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified
    assert set(train.ids).isdisjoint(test.ids) and len(set(train.ids) | set(test.ids)) == 1797


def test_native_size_pixels_are_exact_and_split_is_fixed():
    ds = load("digits,size=8", progress=False)
    reference = load_digits()
    row = int(ds.splits["test"].ids[0].split("#")[1])
    expected = np.rint(reference.images[row] * 255 / 16).astype(np.uint8)
    assert np.array_equal(ds.splits["test"].images[0, 0], expected)
    assert ds.splits["test"].labels[0] == reference.target[row]
    assert ds.splits["test"].ids == load("digits,size=8", progress=False).splits["test"].ids


def test_rgb_and_larger():
    ds = load("digits,size=64,mode=RGB", progress=False)
    image = ds.splits["train"].images[0]
    assert image.shape == (3, 64, 64) and np.array_equal(image[0], image[2])
