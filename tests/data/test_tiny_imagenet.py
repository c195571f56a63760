"""Tiny ImageNet: the canonical zip read in place, or its folder; labels from the right files."""

import zipfile

import numpy as np
import pytest

from infomax.data import load
from infomax.errors import InfomaxError

from .canonical import TINY_COLORS, image_bytes, write_tiny_imagenet, write_tree


@pytest.mark.parametrize("as_zip", [True, False])
def test_splits_labels_names_and_pixels(tmp_path, as_zip):
    path = tmp_path / ("tiny-imagenet-200.zip" if as_zip else "extracted")
    expected = write_tiny_imagenet(path, per_class=2, as_zip=as_zip)
    ds = load(f"tiny-imagenet:{path}", progress=False)
    assert list(ds.splits) == ["train", "val"]  # the unlabelled test split is left out
    train, val = ds.splits["train"], ds.splits["val"]
    assert ds.class_names == ["goldfish", "tabby", "bullfrog"]  # wnids n01, n02, n03 in sorted order
    assert ds.normalization == "symmetric" and ds.image_shape == (3, 64, 64)
    assert train.ids == [
        f"tiny-imagenet-200/train/{w}/images/{w}_{i}.JPEG" for w in ("n01", "n02", "n03") for i in (0, 1)
    ]
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert val.ids == [f"tiny-imagenet-200/val/images/val_{i}.JPEG" for i in range(4)]
    assert val.labels.tolist() == expected["val_labels"]
    for split in (train, val):
        for image, label in zip(split.images, split.labels, strict=True):
            assert np.abs(image.reshape(3, -1).mean(1) - TINY_COLORS[label]).max() < 3


def test_options_and_norm_override(tmp_path):
    path = tmp_path / "t.zip"
    write_tiny_imagenet(path)
    ds = load(f"tiny-imagenet:{path},size=32,mode=L,norm=center", progress=False)
    assert ds.image_shape == (1, 32, 32) and ds.normalization == "center"


def _without(path, tmp_path, drop):
    out = tmp_path / "broken.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith(drop):
                dst.writestr(info, src.read(info))
    return out


@pytest.mark.parametrize(
    "drop, message",
    [
        ("wnids.txt", "does not look like Tiny ImageNet \\(no wnids.txt\\)"),
        ("val_annotations.txt", "no tiny-imagenet-200/val/val_annotations.txt"),
        (".JPEG", "no images in tiny-imagenet-200/train/"),
    ],
)
def test_wrong_layout(tmp_path, drop, message):
    path = tmp_path / "t.zip"
    write_tiny_imagenet(path)
    with pytest.raises(InfomaxError, match=message) as info:
        load(f"tiny-imagenet:{_without(path, tmp_path, drop)}", progress=False)
    assert "expected tiny-imagenet-200/{wnids.txt" in str(info.value) and "folder:PATH" in str(info.value)


def test_a_folder_of_plain_images_is_not_tiny_imagenet(tmp_path):
    write_tree(tmp_path, {"cats/a.png": image_bytes()}, as_zip=False)
    with pytest.raises(InfomaxError, match="no wnids.txt"):
        load(f"tiny-imagenet:{tmp_path}", progress=False)


def test_missing_and_broken_val_images_are_skipped(tmp_path, capsys):
    path = tmp_path / "t"
    write_tiny_imagenet(path, as_zip=False)
    root = path / "tiny-imagenet-200"
    (root / "val" / "images" / "val_1.JPEG").unlink()
    (root / "val" / "images" / "val_2.JPEG").write_bytes(b"")
    ds = load(f"tiny-imagenet:{path}", progress=False)
    assert ds.splits["val"].ids == [
        "tiny-imagenet-200/val/images/val_0.JPEG",
        "tiny-imagenet-200/val/images/val_3.JPEG",
    ]
    reasons = dict(ds.skipped)
    assert "missing" in reasons["tiny-imagenet-200/val/images/val_1.JPEG"]
    assert "empty file" in reasons["tiny-imagenet-200/val/images/val_2.JPEG"]
    assert "skipped 2 files" in capsys.readouterr().err
