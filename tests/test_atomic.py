"""atomic_write: the new content appears all at once, or the old one stays, and no temp file is left."""

import numpy as np
import pytest

from infomax.atomic import atomic_write


def test_text_bytes_and_writer(tmp_path):
    assert atomic_write(tmp_path / "a.txt", "μ = 0\n") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_bytes() == "μ = 0\n".encode("utf-8")
    atomic_write(tmp_path / "b.bin", b"\x00\xff")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\xff"
    array = np.arange(6, dtype=np.float32).reshape(2, 3)

    def save(path):
        with open(path, "wb") as f:  # a file object: np.save would add ".npy" to the temp name
            np.save(f, array)

    atomic_write(str(tmp_path / "c.npy"), save)
    assert np.array_equal(np.load(tmp_path / "c.npy"), array)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin", "c.npy"]


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old")
    atomic_write(path, "new")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_failing_writer_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "eval.json"
    path.write_text("old")
    seen = []

    def half_then_fail(tmp):
        tmp.write_text("half")
        seen.append(tmp)
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(path, half_then_fail)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["eval.json"]
    # the temp file was hidden, in the same folder, and named after the target
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".eval.json.tmp-")


def test_failing_writer_creates_nothing(tmp_path):
    def fail(tmp):
        raise OSError("no space")

    with pytest.raises(OSError):
        atomic_write(tmp_path / "new.txt", fail)
    assert list(tmp_path.iterdir()) == []


def test_rejects_other_data(tmp_path):
    with pytest.raises(TypeError, match="str, bytes or a writer"):
        atomic_write(tmp_path / "x", 3)
    assert list(tmp_path.iterdir()) == []
