"""The real data beside the repository (../shared/data): listed fully, decoded in part (quick)."""

import numpy as np
import pytest

from infomax.data.parallel import decode_names
from infomax.data.readers.folder import plan_folder
from infomax.data.readers.tiny_imagenet import plan_tiny_imagenet
from infomax.data.sources import cached_tree, is_image_name

pytestmark = pytest.mark.shared


def test_cifar10_jpg_zip_layout_and_pixels(shared_data):
    tree = cached_tree(shared_data / "cifar10-jpg.zip")
    plan = plan_folder([n for n in tree.names() if is_image_name(n)])
    assert {k: len(s.names) for k, s in plan.splits.items()} == {"train": 50000, "test": 10000}
    assert list(plan.splits) == ["train", "test"]
    assert plan.class_names == [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    train = plan.splits["train"]
    assert np.bincount(train.labels).tolist() == [5000] * 10
    assert train.names[:2] == ["cifar10/train/airplane/0000.jpg", "cifar10/train/airplane/0001.jpg"]
    picks = train.names[::2500]  # two per class
    out = decode_names(str(tree.path), picks, size=None, mode="RGB", resize="shorter-crop", progress=False)
    assert out.images.shape == (20, 3, 32, 32) and not out.failed
    assert 40 < out.images.mean() < 200 and out.images.std() > 20


def test_tiny_imagenet_mini_counts_and_pixels(shared_data):
    tree = cached_tree(shared_data / "tiny-imagenet-200-mini.zip")
    plan = plan_tiny_imagenet(tree)
    wnids = tree.read("tiny-imagenet-200/wnids.txt").split()
    classes = len(wnids)
    assert classes >= 200 and len(plan.class_names) == classes
    assert len(plan.splits["train"].names) == 100 * classes  # 100 training images per class
    assert len(plan.splits["val"].names) == 50 * classes  # the full labelled validation split
    assert np.bincount(plan.splits["val"].labels).tolist() == [50] * classes
    assert plan.class_names[0] == "goldfish" and not plan.skipped
    val = plan.splits["val"]
    assert val.names[:3] == [f"tiny-imagenet-200/val/images/val_{i}.JPEG" for i in range(3)]
    out = decode_names(str(tree.path), val.names[:40], size=None, mode="RGB", resize="shorter-crop", progress=False)
    assert out.images.shape == (40, 3, 64, 64) and not out.failed
