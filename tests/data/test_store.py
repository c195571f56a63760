"""The .npy files a first load appends to: numpy's own header, rewritten with the final row count."""

import io

import numpy as np
import pytest

from infomax.data.arrays import adapt, adapt_into
from infomax.data.store import FileRows, Store, WriteFailed, blocks, npy_header


@pytest.mark.parametrize("shape", [(0, 3, 8, 8), (5,), (9, 1, 4, 4), (200_000, 3, 32, 32), (10**12, 3, 224, 224)])
def test_header_is_numpys(shape):
    expected = io.BytesIO()
    np.lib.format.write_array_header_1_0(expected, {"descr": "|u1", "fortran_order": False, "shape": shape})
    assert npy_header(shape) == expected.getvalue()


def test_fewer_rows_than_room_gives_a_valid_file(tmp_path):
    rng = np.random.default_rng(0)
    blocks_in = [rng.integers(0, 256, (k, 3, 5, 4), dtype=np.uint8) for k in (4, 0, 3, 2)]
    rows = Store(tmp_path).rows("train", (3, 5, 4), 10**6)  # a 7-digit header, 9 rows in the end
    for block in blocks_in:
        rows.append(block)
    out = rows.finish()
    expected = np.concatenate(blocks_in)
    assert isinstance(out, np.memmap) and not out.flags.writeable and np.array_equal(out, expected)
    path = tmp_path / "train.images.npy"
    assert path.stat().st_size == 128 + expected.nbytes
    assert np.array_equal(np.load(path, allow_pickle=False), expected)  # read without a memory map too
    with pytest.raises(ValueError, match="expected uint8"):
        FileRows(tmp_path / "x.npy", (3, 5, 4), 2).append(np.zeros((1, 3, 4, 5), np.uint8))


def test_memory_rows_and_write_errors(tmp_path):
    rows = Store(None).rows("train", (1, 2, 2), 5)
    rows.append(np.full((2, 1, 2, 2), 7, np.uint8))
    assert rows.finish().tolist() == [[[[7, 7], [7, 7]]]] * 2
    with pytest.raises(WriteFailed, match="missing"):
        Store(tmp_path / "missing").rows("train", (1, 2, 2), 5)


def test_adapt_into_a_file_equals_adapt_in_memory(tmp_path, monkeypatch):
    import infomax.data.arrays as arrays

    monkeypatch.setattr(arrays, "BLOCK", 3)  # 7 images: blocks of 3, 3, 1
    images = np.random.default_rng(1).integers(0, 256, (7, 1, 6, 6), dtype=np.uint8)
    out = adapt_into(Store(tmp_path), "test", images, size=4, mode="RGB", resize="resize")
    assert out.shape == (7, 3, 4, 4) and np.array_equal(out, adapt(images, size=4, mode="RGB", resize="resize"))


def test_blocks_cover_a_memory_map_in_order(tmp_path):
    array = np.arange(10 * 3 * 2 * 2, dtype=np.uint8).reshape(10, 3, 2, 2)
    np.save(tmp_path / "a.npy", array)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    got = list(blocks(mapped, 4))
    assert [start for start, _ in got] == [0, 4, 8] and [len(b) for _, b in got] == [4, 4, 2]
    assert np.array_equal(np.concatenate([b for _, b in got]), array) and np.array_equal(mapped, array)
