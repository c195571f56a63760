"""Embeddings as parts: ShardedArray against np.concatenate, parts written and read back, old folders."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infomax.embed import shards
from infomax.embed.files import Embeddings, load_embeddings, save_embeddings
from infomax.embed.shards import ShardedArray, finished_parts, iter_metadata, read_metadata, write_part
from infomax.errors import InfomaxError


def _parts(sizes, dim=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, dim)).astype(dtype) for n in sizes]


def _metadata(n, start=0):
    ids = [f"img/{i}" for i in range(start, start + n)]
    return pd.DataFrame({"id": ids, "split": "train", "label": pd.array([i % 7 for i in range(start, start + n)],
                                                                        dtype="Int64"),
                         "label_name": [str(i % 7) for i in range(start, start + n)]})


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(0, 9), min_size=1, max_size=6).filter(lambda s: sum(s) > 0), data=st.data())
def test_indexing_equals_the_concatenated_parts(sizes, data):
    parts = _parts(sizes)
    whole = np.concatenate(parts)  # the reference: every row in memory
    x = ShardedArray(parts)
    n = len(whole)
    assert x.shape == whole.shape and len(x) == n and x.dtype == np.float32
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), max_size=20)), dtype=np.int64)
    np.testing.assert_array_equal(x[idx], whole[idx])
    grid = idx[: len(idx) // 2 * 2].reshape(-1, 2)  # a 2-D index array keeps its shape
    np.testing.assert_array_equal(x[grid], whole[grid])
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    np.testing.assert_array_equal(x[mask], whole[mask])
    i = data.draw(st.integers(-n, n - 1))
    np.testing.assert_array_equal(x[i], whole[i])
    a, b = data.draw(st.integers(-n - 2, n + 2)), data.draw(st.integers(-n - 2, n + 2))
    step = data.draw(st.sampled_from([None, 1, 2, 3, -1]))
    np.testing.assert_array_equal(x[a:b:step], whole[a:b:step])
    np.testing.assert_array_equal(x[idx, 1:], whole[idx, 1:])
    rows = data.draw(st.integers(1, 7))
    starts = [s for s, _ in x.blocks(rows)]
    assert starts == list(range(0, n, rows))
    np.testing.assert_array_equal(np.concatenate([blk for _, blk in x.blocks(rows)]), whole)
    np.testing.assert_array_equal(np.asarray(x), whole)


def test_index_errors_and_offsets():
    x = ShardedArray(_parts([2, 0, 3]))
    assert x.offsets.tolist() == [0, 2, 2] and x.offsets.dtype == np.int64
    with pytest.raises(IndexError):
        x[5]
    with pytest.raises(IndexError):
        x[np.array([0, 5])]
    with pytest.raises(InfomaxError, match="disagree on their width"):
        ShardedArray([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])


def test_parts_round_trip_in_float32_and_float16(tmp_path):
    sizes = [4, 4, 3]
    parts32 = _parts(sizes, dim=5, seed=1)
    for dtype in (np.float32, np.float16):
        out = tmp_path / np.dtype(dtype).name
        start = 0
        for k, p in enumerate(parts32):
            write_part(out, k, p.astype(dtype), _metadata(len(p), start), {"fc": p[:, :2] * 10})
            start += len(p)
        assert finished_parts(out) == [0, 1, 2]
        x = ShardedArray.open([shards.vectors_path(out, k) for k in range(3)])
        whole = np.concatenate(parts32)
        assert x.storage_dtype == dtype and x.dtype == np.float32 and x[0].dtype == np.float32
        if dtype == np.float32:
            np.testing.assert_array_equal(x[:], whole)
        else:  # round to nearest float16: relative error at most 2^-11 (these values are normal floats)
            np.testing.assert_array_equal(x[:], whole.astype(np.float16).astype(np.float32))
            assert np.all(np.abs(x[:] - whole) <= 2.0**-11 * np.abs(whole) + 1e-7)
        fc = ShardedArray.open([shards.vectors_path(out, k, "fc") for k in range(3)])
        assert fc.storage_dtype == dtype and fc.shape == (11, 2)
        meta = read_metadata(out)
        assert meta["id"].tolist() == [f"img/{i}" for i in range(11)] and str(meta["label"].dtype) == "Int64"


def test_metadata_rows_read_only_their_parts(tmp_path, monkeypatch):
    for k in range(4):
        write_part(tmp_path, k, np.zeros((5, 2), np.float32), _metadata(5, 5 * k))
    read = []
    real = shards._read_parquet
    monkeypatch.setattr(shards, "_read_parquet", lambda p: read.append(p.name) or real(p))
    rows = np.array([17, 3, 16, -1, 3])
    got = read_metadata(tmp_path, rows)
    assert got["id"].tolist() == ["img/17", "img/3", "img/16", "img/19", "img/3"]
    assert got["label"].tolist() == [17 % 7, 3, 16 % 7, 19 % 7, 3] and got.index.tolist() == [0, 1, 2, 3, 4]
    assert sorted(read) == ["part-00000.parquet", "part-00003.parquet"]
    starts = [(s, f.index[0], f["id"].iloc[0]) for s, f in iter_metadata(tmp_path)]
    assert starts == [(0, 0, "img/0"), (5, 5, "img/5"), (10, 10, "img/10"), (15, 15, "img/15")]


def test_a_part_without_vectors_is_not_finished(tmp_path):
    write_part(tmp_path, 0, np.zeros((2, 2), np.float32), _metadata(2))
    write_part(tmp_path, 1, np.zeros((2, 2), np.float32), _metadata(2, 2))
    shards.vectors_path(tmp_path, 1).unlink()  # metadata written, vectors not yet: as a crash would leave it
    (tmp_path / "embeddings" / ".part-00001.npy.tmp-1-abcd").write_bytes(b"half")  # a temp file of a killed write
    assert finished_parts(tmp_path) == [0]
    with pytest.raises(InfomaxError, match="2 vectors but 3 metadata rows"):
        write_part(tmp_path, 2, np.zeros((2, 2), np.float32), _metadata(3))


def test_save_and_load_several_parts(tmp_path):
    vectors = _parts([23], dim=4, seed=2)[0]
    emb = Embeddings(vectors, _metadata(23), {"data": "x"}, {"conv": vectors * 2})
    save_embeddings(tmp_path, emb, part_size=10)
    back = load_embeddings(tmp_path)
    assert isinstance(back.vectors, ShardedArray) and [len(p) for p in back.vectors.parts] == [10, 10, 3]
    np.testing.assert_array_equal(back.vectors[:], vectors)
    np.testing.assert_array_equal(back.features("conv")[np.array([22, 0])], vectors[[22, 0]] * 2)
    assert back.metadata["id"].tolist() == emb.metadata["id"].tolist()
    info = json.loads((tmp_path / "embed.json").read_text())
    assert info["parts"] == [{"name": "part-00000", "rows": 10}, {"name": "part-00001", "rows": 10},
                             {"name": "part-00002", "rows": 3}] and info["complete"] is True
    save_embeddings(tmp_path, Embeddings(vectors[:5], _metadata(5), {}), part_size=10)  # fewer parts replace more
    assert finished_parts(tmp_path) == [0] and len(load_embeddings(tmp_path)) == 5


def test_old_single_file_folders_still_load(tmp_path):
    vectors = _parts([9], dim=4, seed=3)[0]
    np.save(tmp_path / "embeddings.npy", vectors)
    np.save(tmp_path / "fc.npy", vectors[:, :2])
    _metadata(9).to_parquet(tmp_path / "metadata.parquet", index=False)
    (tmp_path / "embed.json").write_text(json.dumps({"data": "x", "splits": {"train": [0, 9]}}))
    emb = load_embeddings(tmp_path)
    assert len(emb.vectors.parts) == 1 and emb.info["splits"] == {"train": [0, 9]}
    np.testing.assert_array_equal(emb.vectors[np.array([8, 1])], vectors[[8, 1]])
    np.testing.assert_array_equal(emb.extra["fc"][:], vectors[:, :2])
    assert read_metadata(tmp_path, [4])["id"].tolist() == ["img/4"]
    assert [s for s, _ in iter_metadata(tmp_path)] == [0]


def test_unfinished_or_gapped_folders_are_refused(tmp_path):
    emb = Embeddings(_parts([6], dim=2)[0], _metadata(6), {})
    save_embeddings(tmp_path, emb, part_size=2)
    shards.vectors_path(tmp_path, 1).unlink()
    with pytest.raises(InfomaxError, match="lacks embeddings part part-00001"):
        load_embeddings(tmp_path)
    info = json.loads((tmp_path / "embed.json").read_text())
    (tmp_path / "embed.json").write_text(json.dumps({**info, "complete": False, "num_parts": 3}))
    with pytest.raises(InfomaxError, match="did not finish .2 of 3 parts.*again to resume"):
        load_embeddings(tmp_path)
