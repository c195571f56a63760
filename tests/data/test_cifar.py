"""CIFAR-10 / CIFAR-100 python releases: tar.gz read in place, extracted folders, and bad archives."""

import io
import pickle
import tarfile

import numpy as np
import pytest

from infomax.data import load
from infomax.errors import InfomaxError

from .canonical import CIFAR10_NAMES, write_cifar10, write_cifar100


def test_cifar10_tar_pixels_labels_and_ids(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    written = write_cifar10(archive, per_batch=4, n_test=3)
    ds = load(f"cifar10:{archive}", progress=False)
    assert list(ds.splits) == ["train", "test"]
    train, test = ds.splits["train"], ds.splits["test"]
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (3, 3, 32, 32)
    assert ds.class_names == CIFAR10_NAMES and ds.normalization == "center"
    # batch 2, row 1 is training image 5; its row holds the R, G, B planes of 32×32 in order
    data, labels = written["train"][1]
    image = train.images[5]
    assert image[0, 0, 0] == data[1, 0]  # R at (0, 0)
    assert image[1, 2, 5] == data[1, 1024 + 2 * 32 + 5]  # G at row 2, column 5
    assert image[2, 31, 31] == data[1, 3071]  # B at the last pixel
    assert train.labels.dtype == np.int64
    assert train.labels.tolist() == [label for _, ls in written["train"] for label in ls]
    assert test.labels.tolist() == [9, 8, 7]
    assert train.ids[:5] == ["data_batch_1#0", "data_batch_1#1", "data_batch_1#2", "data_batch_1#3", "data_batch_2#0"]
    assert np.array_equal(test.images.reshape(3, -1), written["test"][0][0])


@pytest.mark.parametrize("inner", [True, False])
def test_cifar10_extracted_folder(tmp_path, inner):
    written = write_cifar10(tmp_path, as_tar=False, str_keys=True)
    path = tmp_path / "cifar-10-batches-py" if inner else tmp_path
    ds = load(f"cifar10:{path}", progress=False)
    assert len(ds.splits["train"]) == 20
    assert np.array_equal(ds.splits["train"].images[:4].reshape(4, -1), written["train"][0][0])


def test_cifar100_fine_and_coarse(tmp_path):
    archive = tmp_path / "cifar-100-python.tar.gz"
    written = write_cifar100(archive)
    fine = load(f"cifar100:{archive}", progress=False)
    coarse = load(f"cifar100:{archive},labels=coarse", progress=False)
    assert fine.splits["train"].labels.tolist() == written["train"][1]
    assert coarse.splits["train"].labels.tolist() == written["train"][2]
    assert len(fine.class_names) == 100 and fine.class_names[3] == "fine3"
    assert len(coarse.class_names) == 20 and coarse.options["labels"] == "coarse"
    assert np.array_equal(fine.splits["test"].images.reshape(2, -1), written["test"][0])


def test_cifar_resize_and_grayscale_options(tmp_path):
    archive = tmp_path / "c.tar.gz"
    write_cifar10(archive)
    ds = load(f"cifar10:{archive},size=16,mode=L,norm=symmetric", progress=False)
    assert ds.image_shape == (1, 16, 16) and ds.normalization == "symmetric"
    assert ds.options["size"] == 16 and ds.options["mode"] == "L"


def test_missing_batches_are_named(tmp_path):
    archive = tmp_path / "partial.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = pickle.dumps({b"label_names": [b"a"]}, protocol=2)
        info = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(InfomaxError, match="missing data_batch_1, data_batch_2.*test_batch"):
        load(f"cifar10:{archive}", progress=False)


@pytest.mark.parametrize("content", [b"not a tar at all", b"\x1f\x8b\x08\x00garbage"])
def test_not_a_tar(tmp_path, content):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(content)
    with pytest.raises(InfomaxError, match="not a readable cifar10 archive"):
        load(f"cifar10:{archive}", progress=False)


def test_truncated_tar(tmp_path):
    archive = tmp_path / "cifar-10-python.tar.gz"
    write_cifar10(archive)
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(InfomaxError, match=str(archive)):
        load(f"cifar10:{archive}", progress=False)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_pickles_that_run_code_are_refused(tmp_path):
    write_cifar10(tmp_path, as_tar=False)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({b"data": _Evil()}, protocol=2))
    with pytest.raises(InfomaxError, match="refusing to load"):
        load(f"cifar10:{tmp_path}", progress=False)


def test_wrong_batch_contents(tmp_path):
    write_cifar10(tmp_path, as_tar=False)
    batch = tmp_path / "cifar-10-batches-py" / "test_batch"
    batch.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2))
    with pytest.raises(InfomaxError, match="expected uint8 N×3072"):
        load(f"cifar10:{tmp_path}", progress=False)
    batch.write_bytes(pickle.dumps({b"pixels": 1}, protocol=2))
    with pytest.raises(InfomaxError, match="test_batch has no 'data' entry"):
        load(f"cifar10:{tmp_path}", progress=False)


def test_missing_path_and_no_download(tmp_path, infomax_home):
    with pytest.raises(InfomaxError, match="does not exist.*--download"):
        load(f"cifar10:{tmp_path / 'nope.tar.gz'}", progress=False)
    with pytest.raises(InfomaxError, match=r"no cifar10 data found.*add --download.*cifar-10-python.tar.gz"):
        load("cifar10", progress=False)
