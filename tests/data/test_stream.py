"""Stream.batches: every sample once per epoch over ranks × workers, equal batch counts per rank,
a sequence fixed by (seed, epoch, rank, world, workers), skip=n as the tail, corrupt members skipped."""

import io
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

import infomax
from infomax.data.shards import write_shards
from infomax.data.stream import open_stream
from infomax.errors import InfomaxError

pytest.importorskip("webdataset")

N, SHARD = 48, 6  # 8 shards of 6 samples


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """48 random 3×4×4 images, label = row % 5, written as 8 shards; returns (folder, images, labels)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, 3, 4, 4), dtype=np.uint8)
    labels = np.arange(N) % 5
    out = tmp_path_factory.mktemp("stream") / "shards"
    write_shards(infomax.load_data(images, labels=labels), out, shard_size=SHARD, progress=False)
    return out, images, labels


def epoch(stream, **kw):
    """[(keys, pixels, labels)] of one rank's epoch, as numpy."""
    return [(ids, x.numpy(), y.numpy()) for x, y, ids in stream.batches(**kw)]


def test_ranks_and_workers_see_every_sample_once(source):
    folder, images, labels = source
    stream = open_stream(f"webdataset:{folder}")
    assert (stream.num_samples, stream.num_shards, stream.image_shape) == (48, 8, (3, 4, 4))
    assert stream.steps_per_epoch(4, 0, 2, 2) == 48 // 2 // 4
    for e in (0, 1):
        keys, counts = [], []
        for rank in (0, 1):
            batches = epoch(stream, epoch=e, seed=3, batch_size=4, rank=rank, world_size=2, workers=2)
            counts.append(len(batches))
            for ids, x, y in batches:
                rows = [int(k) for k in ids]
                np.testing.assert_array_equal(x, images[rows])  # pixels and labels travel with their key
                np.testing.assert_array_equal(y, labels[rows])
                keys += ids
        assert counts == [6, 6]
        assert sorted(keys) == [f"{i:09d}" for i in range(N)]  # all of them, none twice


def test_uneven_shards_give_equal_batch_counts(tmp_path):
    # 51 samples in shards of 6: 8 shards, the last of 3. Over 2 ranks a rank gets 4 shards,
    # at fewest 3 + 6 + 6 + 6 = 21 samples: 21 // 4 = 5 batches on each rank, in every epoch
    images = np.random.default_rng(1).integers(0, 256, (51, 3, 2, 2), dtype=np.uint8)
    write_shards(images, tmp_path / "out", shard_size=6, progress=False)
    stream = open_stream(f"webdataset:{tmp_path / 'out'}")
    assert stream.steps_per_epoch(4, 1, 2, 0) == 5
    for e in range(3):
        for rank in (0, 1):
            batches = list(stream.batches(epoch=e, batch_size=4, rank=rank, world_size=2))
            assert len(batches) == 5 and all(len(ids) == 4 for _, _, ids in batches)
            assert batches[0][1] is None  # unlabelled


def test_same_settings_same_sequence_other_epoch_other_order(source):
    folder, _, _ = source
    stream = open_stream(f"webdataset:{folder}")
    kw = dict(seed=7, batch_size=4, rank=1, world_size=2, workers=2)
    first, again = epoch(stream, epoch=0, **kw), epoch(stream, epoch=0, **kw)
    assert [ids for ids, _, _ in first] == [ids for ids, _, _ in again]
    for (_, x1, y1), (_, x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    other = epoch(stream, epoch=1, **kw)
    assert [ids for ids, _, _ in other] != [ids for ids, _, _ in first]
    other_seed = epoch(stream, epoch=0, **dict(kw, seed=8))
    assert [ids for ids, _, _ in other_seed] != [ids for ids, _, _ in first]
    in_process = epoch(stream, epoch=0, **dict(kw, workers=0))
    keys = sorted(k for ids, _, _ in first for k in ids)  # the rank's shards do not depend on the workers
    assert sorted(k for ids, _, _ in in_process for k in ids) == keys


def test_skip_resumes_with_the_tail(source):
    folder, _, _ = source
    stream = open_stream(f"webdataset:{folder}")
    for workers in (0, 2):
        kw = dict(epoch=2, seed=1, batch_size=4, rank=0, world_size=2, workers=workers)
        full = [ids for ids, _, _ in epoch(stream, **kw)]
        assert [ids for ids, _, _ in epoch(stream, skip=4, **kw)] == full[4:]
        assert epoch(stream, skip=len(full), **kw) == []


def corrupt_copy(src: Path, dst: Path, bad_key: str) -> None:
    """Copy a shard with the image of one sample replaced by bytes that are no image."""
    with tarfile.open(src) as tin, tarfile.open(dst, "w") as tout:
        for member in tin.getmembers():
            data = tin.extractfile(member).read()
            if member.name == f"{bad_key}.png":
                data = b"\x89PNG but then nothing"
                member.size = len(data)
            tout.addfile(member, io.BytesIO(data))


def test_corrupt_member_is_skipped_and_reported(source, tmp_path, capsys):
    folder, images, _ = source
    shutil.copytree(folder, tmp_path / "shards")
    shard = tmp_path / "shards/train/shard-000001.tar"
    corrupt_copy(folder / "train/shard-000001.tar", shard, "000000008")
    stream = open_stream(f"webdataset:{tmp_path / 'shards'}")
    assert stream.steps_per_epoch(1) == 48
    keys = []
    for x, _, ids in stream.batches(batch_size=1, workers=1):
        np.testing.assert_array_equal(x[0].numpy(), images[int(ids[0])])
        keys += ids
    # 47 readable samples; the 48th batch comes from reading the shards again
    assert len(keys) == 48 and "000000008" not in keys and len(set(keys)) == 47
    assert [s[:2] for s in stream.skipped] == [(str(shard), "000000008")]
    assert "not an image" in stream.skipped[0][2] or "damaged" in stream.skipped[0][2]
    err = capsys.readouterr().err
    assert f"skipped 000000008 in {shard}" in err and "reading them again" in err


def test_brace_spec_without_manifest_counts_and_warns(source, tmp_path, capsys):
    folder, _, labels = source
    for i in range(4):
        shutil.copy(folder / f"train/shard-{i:06d}.tar", tmp_path)
    stream = open_stream(f"webdataset:{tmp_path}/shard-{{000000..000003}}.tar,size=2")
    assert "reading them once to count" in capsys.readouterr().err
    assert (stream.num_samples, stream.num_shards, stream.image_shape, stream.labelled) == (24, 4, (3, 2, 2), True)
    with_manifest = open_stream(f"webdataset:{folder}/train/shard-{{000000..000003}}.tar")
    assert "count" not in capsys.readouterr().err and with_manifest.num_samples == 24
    (_, x, y), = [(ids, x, y) for x, y, ids in stream.batches(batch_size=24)]
    assert x.shape == (24, 3, 2, 2) and sorted(y.tolist()) == sorted(labels[:24].tolist())


def test_clear_errors(source, tmp_path):
    folder, _, _ = source
    stream = open_stream(f"webdataset:{folder}")
    with pytest.raises(InfomaxError, match="8 shards cannot be spread over 9 ranks"):
        stream.steps_per_epoch(1, 0, 9, 0)
    with pytest.raises(InfomaxError, match="larger than the samples"):
        next(stream.batches(batch_size=49))
    with pytest.raises(InfomaxError, match="rank must be"):
        stream.steps_per_epoch(1, 2, 2, 0)
    with pytest.raises(InfomaxError, match="skip"):
        next(stream.batches(batch_size=8, skip=7))
    with pytest.raises(InfomaxError, match="do not exist"):
        open_stream(f"webdataset:{folder}/train/shard-{{000000..000009}}.tar")
    with pytest.raises(InfomaxError, match="neither shards.json nor .tar"):
        open_stream(f"webdataset:{tmp_path}")


def npy_bytes(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_hostile_npy_members_are_skipped_with_their_reason(tmp_path, capsys):
    # a shard written by hand, no manifest: the first good .npy gives the shape (1×4×4);
    # a pickle, floats, 4 channels, a cut-off array and non-npy bytes are refused, never loaded
    good = [np.full((1, 4, 4), 10 * i, np.uint8) for i in range(3)]
    members = {
        "000.npy": npy_bytes(good[0]),
        "001.npy": npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "002.npy": npy_bytes(np.zeros((1, 4, 4), np.float32)),
        "003.npy": npy_bytes(good[1]),
        "004.npy": npy_bytes(np.zeros((4, 4, 4), np.uint8)),
        "005.npy": npy_bytes(good[2])[:-5],
        "006.npy": b"\x93NUMPY but then nothing",
        "007.npy": npy_bytes(good[2]),
    }
    with tarfile.open(tmp_path / "shard-000000.tar", "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    stream = open_stream(f"webdataset:{tmp_path}")
    assert (stream.image_shape, stream.labelled) == ((1, 4, 4), False)
    got = [(ids[0], x[0].numpy()) for x, _, ids in stream.batches(batch_size=1)]
    assert len(got) == 8 and {key for key, _ in got} == {"000", "003", "007"}  # read again to fill 8 batches
    for key, image in got:
        np.testing.assert_array_equal(image, good[{"000": 0, "003": 1, "007": 2}[key]])
    reasons = {key: reason for _, key, reason in stream.skipped}
    assert sorted(reasons) == ["001", "002", "004", "005", "006"]
    assert "not a readable .npy" in reasons["001"] and "readable .npy" in reasons["005"]
    assert "uint8 C×H×W" in reasons["002"] and "(4, 4, 4)" in reasons["004"]
    assert "skipped 001" in capsys.readouterr().err


def test_only_the_image_and_label_members_are_read(tmp_path):
    from infomax.data.stream_pipeline import read_member

    assert [read_member(n) for n in ("000.npy", "dir/000.PNG", "000.cls", "a.b/000.jpg")] == [True] * 4
    assert [read_member(n) for n in ("000.json", "000.txt", "000.seg.png", "000", "npy")] == [False] * 5
    # samples that also carry members the stream does not read (a .json that is no JSON, a caption)
    images = [np.full((1, 2, 2), 7 * i, np.uint8) for i in range(4)]
    with tarfile.open(tmp_path / "shard-000000.tar", "w") as tar:
        for i, image in enumerate(images):
            for ext, data in (("json", b"\xff not json"), ("npy", npy_bytes(image)), ("cls", str(i % 2).encode()),
                              ("txt", b"a caption")):
                info = tarfile.TarInfo(f"{i:03d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    stream = open_stream(f"webdataset:{tmp_path}")
    assert (stream.image_shape, stream.labelled) == ((1, 2, 2), True)
    got = {ids[0]: (x[0].numpy(), int(y[0])) for x, y, ids in stream.batches(batch_size=1, seed=1)}
    assert sorted(got) == ["000", "001", "002", "003"] and stream.skipped == []
    for i, image in enumerate(images):
        np.testing.assert_array_equal(got[f"{i:03d}"][0], image)
        assert got[f"{i:03d}"][1] == i % 2
