"""`write_shards` / `infomax data shard`: tar shards that read back to the source's pixels and labels.

The reference is the source itself: the files on disk read with Pillow, or the arrays given;
the tar members are read with Python's tarfile, independently of webdataset.
"""

import argparse
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import infomax
from infomax.data import cli, load
from infomax.data import shards as shards_module
from infomax.data.shards import write_shards
from infomax.data.stream import open_stream
from infomax.errors import InfomaxError

pytest.importorskip("webdataset")


def write_folder(root: Path, per_class=(4, 3), size=(8, 8), seed=0) -> dict[str, np.ndarray]:
    """root/{train,test}/{cat,dog}/N.png of random pixels; returns relative path -> C×H×W pixels."""
    rng, pixels = np.random.default_rng(seed), {}
    for split, count in zip(("train", "test"), per_class):
        for label in ("cat", "dog"):
            (root / split / label).mkdir(parents=True)
            for i in range(count):
                image = rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)  # H×W×3
                Image.fromarray(image).save(root / split / label / f"{i}.png")
                pixels[f"{split}/{label}/{i}.png"] = image.transpose(2, 0, 1)
    return pixels


def read_all(spec: str, **kw):
    """Every sample of a stream, one epoch, batch 1 on one rank: {key: (pixels, label)}."""
    stream = open_stream(spec, **kw)
    out = {}
    for images, labels, ids in stream.batches(batch_size=1, workers=0):
        out[ids[0]] = (images[0].numpy(), None if labels is None else int(labels[0]))
    assert len(out) == stream.num_samples
    return stream, out


def tar_members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_folder_shards_read_back_exactly(tmp_path):
    pixels = write_folder(tmp_path / "imgs")
    top = write_shards(f"folder:{tmp_path / 'imgs'}", tmp_path / "out", shard_size=3, progress=False)
    assert top["splits"] == {"train": {"path": "train", "samples": 8, "shards": 3},
                             "test": {"path": "test", "samples": 6, "shards": 2}}
    for split, count in (("train", 8), ("test", 6)):
        manifest = json.loads((tmp_path / "out" / split / "shards.json").read_text())
        assert [s["samples"] for s in manifest["shards"]] == {8: [3, 3, 2], 6: [3, 3]}[count]
        assert manifest["class_names"] == ["cat", "dog"] and manifest["image_shape"] == [3, 8, 8]
        source_of = {}  # key -> source id, from the .json members
        for shard in manifest["shards"]:
            for name, data in tar_members(tmp_path / "out" / split / shard["name"]).items():
                if name.endswith(".json"):
                    meta = json.loads(data)
                    source_of[meta["key"]] = meta["id"]
                    assert name == f"{meta['key']}.json" and len(meta["key"]) == 9
        stream, samples = read_all(f"webdataset:{tmp_path / 'out' / split}")
        assert sorted(samples) == [f"{i:09d}" for i in range(count)]
        for key, (image, label) in samples.items():
            rel = source_of[key]
            np.testing.assert_array_equal(image, pixels[rel])
            assert label == ["cat", "dog"].index(rel.split("/")[1])
    assert (tmp_path / "out" / "shards.json").is_file()
    assert not list((tmp_path / "out").rglob(".*tmp*"))  # no temp file left behind


def test_array_source_round_trip_with_labels_and_gray(tmp_path):
    rng = np.random.default_rng(1)
    for channels in (3, 1):
        images = rng.integers(0, 256, (10, channels, 5, 5), dtype=np.uint8)
        labels = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
        out = tmp_path / f"c{channels}"
        write_shards(infomax.load_data(images, labels=labels), out, shard_size=4, progress=False)
        stream, samples = read_all(f"webdataset:{out}")
        assert stream.image_shape == (channels, 5, 5) and stream.num_samples == stream.train_images == 10
        for key, (image, label) in samples.items():
            row = int(key)  # the running key of an array source is its row
            np.testing.assert_array_equal(image, images[row])
            assert label == labels[row]


def test_unlabelled_source_has_no_labels_and_no_cls(tmp_path):
    images = np.random.default_rng(2).integers(0, 256, (4, 3, 4, 4), dtype=np.uint8)
    write_shards(images, tmp_path / "out", shard_size=10, progress=False)
    assert not any(n.endswith(".cls") for n in tar_members(tmp_path / "out/train/shard-000000.tar"))
    _, samples = read_all(f"webdataset:{tmp_path / 'out'}")
    assert all(label is None for _, label in samples.values())


def test_size_resizes_with_shorter_side_and_center_crop(tmp_path):
    # 6×24 (H×W) images, white left and black right quarters around a colored middle half:
    # shorter side to 3 gives 3×12, the center crop keeps 3 columns of the middle, whose
    # center column is the middle color (a stretch to 3×3 would put white and black columns there)
    images = np.zeros((2, 3, 6, 24), np.uint8)
    images[:, :, :, :6] = 255
    images[:, :, :, 6:18] = np.array([[10, 200, 30], [90, 90, 250]])[:, :, None, None]
    write_shards(images, tmp_path / "out", size=3, progress=False)
    _, samples = read_all(f"webdataset:{tmp_path / 'out'}")
    for key, (image, _) in samples.items():
        assert image.shape == (3, 3, 3)
        expected = images[int(key), :, 0, 12]
        assert np.abs(image[:, :, 1].astype(int) - expected[:, None]).max() <= 2  # the center column
        assert np.abs(image.astype(int) - expected[:, None, None]).max() < 60  # no white or black column


def test_jpg_format_is_close(tmp_path):
    smooth = np.broadcast_to(np.linspace(0, 255, 16, dtype=np.uint8), (3, 3, 16, 16)).copy()
    write_shards(smooth, tmp_path / "out", image_format="jpg", progress=False)
    assert any(n.endswith(".jpg") for n in tar_members(tmp_path / "out/train/shard-000000.tar"))
    _, samples = read_all(f"webdataset:{tmp_path / 'out'}")
    for key, (image, _) in samples.items():
        assert np.abs(image.astype(int) - smooth[int(key)]).mean() < 3


def test_npy_format_stores_the_raw_pixels(tmp_path):
    rng = np.random.default_rng(5)
    for channels in (3, 1):
        images = rng.integers(0, 256, (5, channels, 6, 6), dtype=np.uint8)
        out = tmp_path / f"c{channels}"
        write_shards(images, out, image_format="npy", shard_size=2, progress=False)
        members = tar_members(out / "train/shard-000000.tar")
        for i in range(2):  # each member is np.save of the image: read back with numpy alone
            stored = np.lib.format.read_array(__import__("io").BytesIO(members[f"{i:09d}.npy"]))
            assert stored.dtype == np.uint8 and stored.shape == (channels, 6, 6)
            np.testing.assert_array_equal(stored, images[i])
        _, samples = read_all(f"webdataset:{out}")
        for key, (image, _) in samples.items():
            np.testing.assert_array_equal(image, images[int(key)])


def test_npy_shards_resize_and_convert_as_png_shards_do(tmp_path):
    # the same lossless pixels as .png and as .npy members: any size and mode reads alike
    images = np.random.default_rng(6).integers(0, 256, (3, 3, 10, 14), dtype=np.uint8)
    for fmt in ("png", "npy"):
        write_shards(images, tmp_path / fmt, image_format=fmt, progress=False)
    for options in (",size=4", ",size=7,mode=L", ",size=5,resize=pad", ",mode=L,size=10"):
        _, from_png = read_all(f"webdataset:{tmp_path / 'png'}{options}")
        _, from_npy = read_all(f"webdataset:{tmp_path / 'npy'}{options}")
        for key in from_png:
            np.testing.assert_array_equal(from_npy[key][0], from_png[key][0])


def test_failed_write_leaves_only_complete_shards(tmp_path, monkeypatch):
    images = np.random.default_rng(3).integers(0, 256, (10, 3, 4, 4), dtype=np.uint8)
    encode, calls = shards_module.encode_image, []

    def failing(image, fmt):
        calls.append(1)
        if len(calls) == 5:
            raise OSError("disk full")
        return encode(image, fmt)

    monkeypatch.setattr(shards_module, "encode_image", failing)
    with pytest.raises(OSError, match="disk full"):
        write_shards(images, tmp_path / "out", shard_size=3, progress=False)
    assert sorted(p.name for p in (tmp_path / "out" / "train").iterdir()) == ["shard-000000.tar"]
    assert len(tar_members(tmp_path / "out/train/shard-000000.tar")) == 6  # 3 samples × (png, json)


def test_existing_shards_need_overwrite_and_stale_ones_go(tmp_path):
    images = np.random.default_rng(4).integers(0, 256, (9, 3, 4, 4), dtype=np.uint8)
    write_shards(images, tmp_path / "out", shard_size=2, progress=False)
    with pytest.raises(InfomaxError, match="--overwrite"):
        write_shards(images, tmp_path / "out", shard_size=2, progress=False)
    write_shards(images, tmp_path / "out", shard_size=5, overwrite=True, progress=False)
    assert sorted(p.name for p in (tmp_path / "out/train").glob("*.tar")) == ["shard-000000.tar", "shard-000001.tar"]


def test_bad_arguments_are_clear(tmp_path):
    images = np.zeros((2, 3, 4, 4), np.uint8)
    with pytest.raises(InfomaxError, match="png, jpg or npy"):
        write_shards(images, tmp_path / "a", image_format="gif", progress=False)
    with pytest.raises(InfomaxError, match="positive number"):
        write_shards(images, tmp_path / "a", shard_size=0, progress=False)
    with pytest.raises(InfomaxError, match="from 1 to 4096"):
        write_shards(images, tmp_path / "a", size=0, progress=False)
    with pytest.raises(InfomaxError, match="no split 'val'"):
        write_shards(images, tmp_path / "a", split="val", progress=False)
    with pytest.raises(InfomaxError, match="open_stream"):
        load(f"webdataset:{tmp_path}")


def _run(*argv) -> int:
    parser = argparse.ArgumentParser(prog="infomax")
    cli.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


def test_cli_shard_then_info(tmp_path, capsys):
    write_folder(tmp_path / "imgs", per_class=(5, 2), size=(12, 10))
    (tmp_path / "imgs/train/cat/broken.png").write_bytes(b"not a png")
    out = tmp_path / "shards"
    assert _run("data", "shard", f"folder:{tmp_path / 'imgs'}", "--out", out, "--shard-size", "4", "--size", "8",
                "--split", "train", "--no-progress") == 0
    printed = capsys.readouterr()
    assert "train: 10 images (3×8×8) in 3 shards" in printed.out
    assert "skipped 1 images" in printed.err and "broken.png" in printed.err
    assert sorted(p.name for p in out.iterdir()) == ["shards.json", "train"]
    assert _run("data", "info", f"webdataset:{out}") == 0
    info = capsys.readouterr().out
    for text in ("samples:       10", "image shape:   3×8×8", "shards:        3", "class names:   cat, dog"):
        assert text in info, text
    _, samples = read_all(f"webdataset:{out}")
    labels = sorted(label for _, label in samples.values())
    assert labels == [0] * 5 + [1] * 5
