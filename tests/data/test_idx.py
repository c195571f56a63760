"""MNIST-style IDX files: gzip'd or raw, real headers, and the errors for damaged ones."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

from infomax.data import load
from infomax.data.readers.idx import read_idx
from infomax.errors import InfomaxError

from .canonical import idx_bytes, write_idx_set


@pytest.mark.parametrize("gz", [True, False])
def test_idx_pixels_labels_ids(tmp_path, gz):
    written = write_idx_set(tmp_path / "m", gz=gz)
    ds = load(f"idx:{tmp_path / 'm'}", progress=False)
    train = ds.splits["train"]
    images, labels = written["train"]
    assert train.images.shape == (5, 1, 28, 28)
    assert train.images[3, 0, 7, 11] == images[3, 7, 11]
    assert np.array_equal(train.images[:, 0], images)
    assert train.labels.tolist() == labels.tolist() and train.labels.dtype == np.int64
    suffix = ".gz" if gz else ""
    assert ds.splits["test"].ids == [f"t10k-images-idx3-ubyte{suffix}#{i}" for i in range(3)]
    assert ds.class_names == [str(i) for i in range(10)] and ds.normalization == "center"


def test_header_magic_numbers(tmp_path):
    data = idx_bytes(np.zeros((2, 3, 4), np.uint8))
    assert data[:4] == b"\x00\x00\x08\x03" and data[4:8] == b"\x00\x00\x00\x02"
    assert idx_bytes(np.zeros(5, np.uint8))[:4] == b"\x00\x00\x08\x01"


def test_fashion_names_and_resize(tmp_path):
    write_idx_set(tmp_path)
    ds = load(f"fashion-mnist:{tmp_path},size=32,mode=RGB", progress=False)
    assert ds.class_names[9] == "Ankle boot"
    assert ds.image_shape == (3, 32, 32)
    assert ds.kind == "fashion-mnist"


def test_dotted_spelling(tmp_path):
    written = write_idx_set(tmp_path, gz=False)
    for path in tmp_path.iterdir():
        path.rename(path.with_name(path.name.replace("-idx", ".idx")))
    ds = load(f"mnist:{tmp_path}", progress=False)
    assert np.array_equal(ds.splits["test"].images[:, 0], written["test"][0])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01\x02\x08\x03" + bytes(20), "bad magic number"),
        (b"\x00\x00\x0d\x03" + bytes(20), "value type 0x0d"),
        (b"\x00\x00\x08\x01" + bytes(20), "has 1 dimensions; expected 3"),
        (b"\x00\x00\x08\x03\x00\x00", "header is incomplete"),
        (idx_bytes(np.zeros((2, 4, 4), np.uint8))[:-5], "truncated: 27 bytes of values, expected 32"),
        (b"\x1f\x8b\x08\x00broken-gzip", "cannot read it"),
    ],
)
def test_damaged_files(tmp_path, data, message):
    with pytest.raises(InfomaxError, match=message):
        read_idx(_write(tmp_path / "f", data), ndim=3)


def test_truncated_gzip_in_a_set(tmp_path):
    write_idx_set(tmp_path)
    target = tmp_path / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-20])
    with pytest.raises(InfomaxError, match="train-images-idx3-ubyte.gz: cannot read it"):
        load(f"idx:{tmp_path}", progress=False)


def test_missing_file_and_count_mismatch(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(InfomaxError, match="no t10k-labels-idx1-ubyte file"):
        load(f"idx:{tmp_path}", progress=False)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(7, np.uint8))))
    with pytest.raises(InfomaxError, match="holds 3 images but .* 7 labels"):
        load(f"idx:{tmp_path}", progress=False)


def test_idx_needs_a_folder(tmp_path):
    write_idx_set(tmp_path)
    with pytest.raises(InfomaxError, match="is not a folder"):
        load(f"idx:{tmp_path / 'train-images-idx3-ubyte.gz'}", progress=False)


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist(monkeypatch):
    monkeypatch.delenv("INFOMAX_WORKERS", raising=False)
    ds = load("fashion-mnist", progress=False)
    assert ds.path == str(DEBIAN) and os.path.isdir(ds.path)
    assert {k: len(s) for k, s in ds.splits.items()} == {"train": 60000, "test": 10000}
    assert ds.image_shape == (1, 28, 28)
    assert np.bincount(ds.splits["test"].labels).tolist() == [1000] * 10
