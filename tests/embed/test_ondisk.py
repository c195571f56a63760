"""EmbeddingsOnDisk (what an ivfpq build reads) against load_embeddings' DataFrame, and page release."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from infomax.embed import shards
from infomax.embed.files import Embeddings, load_embeddings, save_embeddings
from infomax.embed.ondisk import EmbeddingsOnDisk
from infomax.errors import InfomaxError


def _emb(n=57, seed=0):
    rng = np.random.default_rng(seed)
    split = np.array(["train", "test", "val"])[rng.integers(0, 3, n)]
    label = pd.array([None if i % 5 == 0 else i % 3 for i in range(n)], dtype="Int64")
    meta = pd.DataFrame({"id": [f"img/{i:03d}" for i in range(n)], "split": split, "label": label,
                         "label_name": [f"c{i % 3}" for i in range(n)]})
    return Embeddings(rng.standard_normal((n, 4)).astype(np.float32), meta, {"data": "x", "checkpoint": "r"})


@pytest.mark.parametrize("part_size", [10, 100])
def test_columns_and_chunks_equal_the_dataframe(tmp_path, part_size):
    save_embeddings(tmp_path, _emb(), part_size=part_size)
    full, disk = load_embeddings(tmp_path), EmbeddingsOnDisk(tmp_path)
    assert len(disk) == 57 and disk.info == full.info and disk.splits == full.splits
    np.testing.assert_array_equal(disk.vectors[:], full.vectors[:])
    for split in ("train", "test", "val", "nothing"):
        np.testing.assert_array_equal(disk.rows(split), full.rows(split))
    pick = np.array([56, 0, 10, 9, 33, 33])
    assert disk.ids[pick].tolist() == full.metadata["id"].to_numpy()[pick].tolist()
    rows = full.rows("train")
    for chunk in (1, 4, 1000):
        frames = list(disk.metadata_chunks(rows, chunk))
        assert all(len(f) <= chunk for f in frames)
        got = pd.concat(frames, ignore_index=True)
        pd.testing.assert_frame_equal(got, full.metadata.iloc[rows].reset_index(drop=True))


def test_the_ivfpq_build_never_reads_the_whole_metadata(tmp_path, monkeypatch):
    from infomax.index.store import GalleryIndex, build_gallery

    emb = _emb(n=1200, seed=1)
    save_embeddings(tmp_path / "emb", emb, part_size=500)
    expected = build_gallery(tmp_path / "emb", tmp_path / "a", split="train", kind="ivfpq", emb=load_embeddings(tmp_path / "emb"),
                             params={"nlist": 4, "m": 2}, threads=1)

    def whole(*args, **kwargs):
        raise AssertionError("the whole metadata was read")

    monkeypatch.setattr(shards, "read_metadata", whole)
    monkeypatch.setattr(pd, "read_parquet", whole)
    built = build_gallery(tmp_path / "emb", tmp_path / "b", split="train", kind="ivfpq",
                          params={"nlist": 4, "m": 2}, threads=1)
    monkeypatch.undo()
    back = GalleryIndex.load(tmp_path / "b")
    assert built.info["fingerprint"] == expected.info["fingerprint"]
    rows = emb.rows("train")
    np.testing.assert_array_equal(back.embedding_rows, rows)
    assert back.describe(np.arange(len(rows)))["id"].tolist() == emb.metadata["id"].iloc[rows].tolist()
    q = emb.vectors[:5]
    np.testing.assert_array_equal(back.search(q, 5)[1], GalleryIndex.load(tmp_path / "a").search(q, 5)[1])


def test_rows_that_disagree_with_the_vectors_are_refused(tmp_path):
    save_embeddings(tmp_path, _emb(n=20), part_size=10)
    _emb(n=7).metadata.to_parquet(shards.metadata_path(tmp_path, 1), index=False)
    with pytest.raises(InfomaxError, match="20 embeddings but 17 metadata rows"):
        EmbeddingsOnDisk(tmp_path)


def _rss_file_mb() -> float:
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return int(status["RssFile"].split()[0]) / 1024


def _filled(tmp_path, value: float, n: int = 1 << 16) -> shards.ShardedArray:
    """A memory-mapped n×256 float32 file of `value` (64 MiB at the default n)."""
    vectors = np.lib.format.open_memmap(tmp_path / "v.npy", "w+", np.float32, (n, 256))
    vectors[:] = value
    vectors.flush()
    del vectors
    return shards.ShardedArray.open([tmp_path / "v.npy"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_release_drops_the_pages_read_from_resident_memory(tmp_path):
    n = 1 << 16
    array = _filled(tmp_path, 1.0, n)
    before = _rss_file_mb()
    assert float(array[:].sum()) == n * 256  # every page read through the mapping
    assert _rss_file_mb() - before > 48
    array.release()
    assert _rss_file_mb() - before < 8
    assert float(array[n - 1].sum()) == 256  # still readable after the release


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_read_with_pread_equals_indexing(tmp_path, dtype):
    rng = np.random.default_rng(4)
    parts = [rng.standard_normal((n, 5)).astype(dtype) for n in (7, 1, 12)]
    for k, part in enumerate(parts):
        np.save(tmp_path / f"p{k}.npy", part)
    mapped = shards.ShardedArray.open([tmp_path / f"p{k}.npy" for k in range(3)])
    in_memory = shards.ShardedArray(parts)
    rows = np.array([[19, 0, 7], [8, 6, 7]])
    expected = np.concatenate(parts).astype(np.float32)[rows]
    for array in (mapped, in_memory):
        got = array.read(rows)
        assert got.dtype == np.float32 and got.shape == (2, 3, 5)
        np.testing.assert_array_equal(got, expected)
    with pytest.raises(IndexError, match="0..19"):
        mapped.read([20])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_pread_leaves_no_pages_in_resident_memory(tmp_path):
    n = 1 << 16
    array = _filled(tmp_path, 2.0, n)
    rows = np.random.default_rng(0).choice(n, 4096, replace=False)
    before = _rss_file_mb()
    assert float(array.read(rows).sum()) == 2.0 * 4096 * 256
    assert _rss_file_mb() - before < 4
    assert float(array[rows].sum()) == 2.0 * 4096 * 256  # the same rows through the mapping
    assert _rss_file_mb() - before > 16
