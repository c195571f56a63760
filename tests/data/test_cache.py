"""The decoded-array cache: reused, keyed on source and options, atomic, and rebuilt when damaged."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from infomax.data import cache, cache_home, load
from infomax.data.cache import INDEX

from .canonical import image_bytes, write_tree


@pytest.fixture
def folder(tmp_path) -> Path:
    files = {
        f"{c}/{i}.png": image_bytes((40 * i, 80 * k, 200), (8, 8)) for k, c in enumerate(("a", "b")) for i in range(3)
    }
    write_tree(tmp_path / "imgs", files, as_zip=False)
    return tmp_path / "imgs"


def _entries(home: Path) -> list[Path]:
    return sorted(p for p in (home / "decoded").iterdir() if not p.name.startswith("."))


def test_second_load_is_memory_mapped_from_cache(folder, infomax_home):
    first = load(f"folder:{folder}", progress=False)
    second = load(f"folder:{folder}", progress=False)
    assert not first.from_cache and second.from_cache
    images = second.splits["train"].images
    assert isinstance(images, np.memmap) and not images.flags.writeable
    assert np.array_equal(images, first.splits["train"].images)
    assert second.splits["train"].ids == first.splits["train"].ids
    assert second.class_names == ["a", "b"] and second.cache_path == first.cache_path
    assert len(_entries(infomax_home)) == 1


def test_key_follows_options_and_source(folder, infomax_home):
    load(f"folder:{folder}", progress=False)
    assert load(f"folder:{folder},norm=symmetric", progress=False).from_cache  # pixels unchanged
    assert not load(f"folder:{folder},size=4", progress=False).from_cache
    changed = folder / "a" / "0.png"
    changed.write_bytes(image_bytes((1, 2, 3), (8, 8)))
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    reloaded = load(f"folder:{folder}", progress=False)
    assert not reloaded.from_cache and reloaded.splits["train"].images[0, :, 0, 0].tolist() == [1, 2, 3]
    assert len(_entries(infomax_home)) == 3


def test_cache_dir_argument(folder, tmp_path, infomax_home):
    ds = load(f"folder:{folder}", progress=False, cache_dir=str(tmp_path / "elsewhere"))
    assert Path(ds.cache_path).parent == tmp_path / "elsewhere" / "decoded"
    assert not (infomax_home / "decoded").exists()


def test_cache_home(monkeypatch, tmp_path):
    assert cache_home() == tmp_path / "infomax-home"
    monkeypatch.delenv("INFOMAX_HOME")
    assert cache_home() == Path.home() / ".cache" / "infomax"


@pytest.mark.parametrize("damage", ["truncate", "index", "labels-missing", "shape"])
def test_damaged_cache_is_rebuilt(folder, capsys, damage):
    entry = Path(load(f"folder:{folder}", progress=False).cache_path)
    images = entry / "train.images.npy"
    if damage == "truncate":
        images.write_bytes(images.read_bytes()[:-7])
    elif damage == "index":
        (entry / INDEX).write_text("{not json")
    elif damage == "labels-missing":
        (entry / "train.labels.npy").unlink()
    else:
        np.save(images, np.zeros((6, 3, 8, 7), np.uint8))  # same byte count, wrong shape
        index = json.loads((entry / INDEX).read_text())
        index["splits"]["train"]["bytes"][0] = images.stat().st_size
        (entry / INDEX).write_text(json.dumps(index))
    again = load(f"folder:{folder}", progress=False)
    assert not again.from_cache and again.image_shape == (3, 8, 8)
    assert "is damaged" in capsys.readouterr().err
    assert load(f"folder:{folder}", progress=False).from_cache


def test_interrupted_write_leaves_nothing(folder, infomax_home, monkeypatch):
    real = cache._save_npy
    calls = []

    def interrupted(path, array):
        calls.append(path)
        if len(calls) == 1:  # the labels, after the images were written
            raise KeyboardInterrupt
        return real(path, array)

    monkeypatch.setattr(cache, "_save_npy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load(f"folder:{folder}", progress=False)
    assert list((infomax_home / "decoded").iterdir()) == []
    monkeypatch.setattr(cache, "_save_npy", real)
    assert not load(f"folder:{folder}", progress=False).from_cache


def test_stale_temporary_folders_are_removed(folder, infomax_home):
    stale = infomax_home / "decoded" / ".folder-0123.tmp-999-abcd"
    stale.mkdir(parents=True)
    (stale / "train.images.npy").write_bytes(b"half")
    os.utime(stale, (time.time() - 2 * cache.STALE_S,) * 2)
    fresh = infomax_home / "decoded" / ".folder-4567.tmp-998-abcd"
    fresh.mkdir()
    load(f"folder:{folder}", progress=False)
    assert not stale.exists() and fresh.exists()


def test_unwritable_cache_goes_on_without_it(folder, capsys, monkeypatch):
    reference = load(f"folder:{folder}", progress=False, cache_dir=str(folder.parent / "ok"))

    def refuse(entry):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("infomax.data.loader.begin", refuse)
    ds = load(f"folder:{folder}", progress=False)
    assert ds.cache_path is None and not ds.from_cache
    assert np.array_equal(ds.splits["train"].images, reference.splits["train"].images)
    assert ds.splits["train"].ids == reference.splits["train"].ids
    assert "cannot write the cache" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["images", "index"])
def test_cache_full_midway_goes_on_without_it(folder, capsys, monkeypatch, infomax_home, where):
    from infomax.data import store

    reference = load(f"folder:{folder}", progress=False, cache_dir=str(folder.parent / "ok"))
    real_append = store.FileRows.append

    def full_append(self, block):  # the disk holding the cache is full; the temporary folder is not
        if str(infomax_home) in str(self.path):
            raise store.WriteFailed(self.path, OSError(28, "No space left on device"))
        real_append(self, block)

    def full_commit(tmp, entry, dataset):
        raise OSError(28, "No space left on device")

    if where == "images":
        monkeypatch.setattr(store.FileRows, "append", full_append)
    else:
        monkeypatch.setattr("infomax.data.loader.commit", full_commit)
    ds = load(f"folder:{folder}", progress=False)
    assert ds.cache_path is None and np.array_equal(ds.splits["train"].images, reference.splits["train"].images)
    assert isinstance(ds.splits["train"].images, np.memmap)  # from a deleted file, not copied into memory
    assert "No space left on device" in capsys.readouterr().err
    assert [p for p in (infomax_home / "decoded").iterdir()] == []  # no entry, no temporary folder left
