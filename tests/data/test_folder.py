"""Folders and zips of images: layouts, options, and a corpus of bad files."""

import numpy as np
import pytest
from PIL import Image

from infomax.data import load
from infomax.data.readers.folder import plan_folder
from infomax.errors import InfomaxError

from .canonical import bad_files, image_bytes, write_tree

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _plan(names):
    plan = plan_folder(names)
    return {k: (s.names, s.labels) for k, s in plan.splits.items()}, plan.class_names, plan.skipped


def test_flat_folder_is_unlabelled():
    splits, classes, _ = _plan(["a.jpg", "b.jpg"])
    assert splits == {"train": (["a.jpg", "b.jpg"], None)} and classes is None


def test_class_folders():
    splits, classes, _ = _plan(["cat/1.jpg", "dog/2.jpg", "cat/sub/3.jpg"])
    assert classes == ["cat", "dog"] and splits["train"] == (["cat/1.jpg", "dog/2.jpg", "cat/sub/3.jpg"], [0, 1, 0])


def test_one_wrapper_folder_is_stripped():
    splits, classes, _ = _plan(["photos/cat/1.jpg", "photos/dog/2.jpg"])
    assert classes == ["cat", "dog"]
    splits, classes, _ = _plan(["photos/1.jpg", "photos/2.jpg"])
    assert classes is None and splits["train"][1] is None


def test_split_folders_under_a_wrapper_like_cifar10_jpg():
    names = [
        "cifar10/test/airplane/0000.jpg",
        "cifar10/test/truck/0000.jpg",
        "cifar10/train/airplane/0000.jpg",
        "cifar10/train/bird/0001.jpg",
    ]
    splits, classes, skipped = _plan(names)
    assert list(splits) == ["train", "test"]  # train first
    assert classes == ["airplane", "bird", "truck"]
    assert splits["train"] == (["cifar10/train/airplane/0000.jpg", "cifar10/train/bird/0001.jpg"], [0, 1])
    assert splits["test"][1] == [0, 2] and skipped == []


def test_split_folders_mixed_labelling_and_strays():
    splits, classes, skipped = _plan(["train/a/1.png", "train/b/2.png", "validation/x.png", "readme.png"])
    assert list(splits) == ["train", "val"] and classes == ["a", "b"]
    assert splits["val"] == (["validation/x.png"], None)
    assert skipped == [("readme.png", "outside the train/test/val folders")]


def test_loose_images_beside_class_folders_mean_unlabelled():
    splits, classes, _ = _plan(["cat/1.jpg", "2.jpg"])
    assert classes is None and splits["train"][1] is None


@pytest.mark.parametrize("as_zip", [False, True])
def test_pixels_labels_ids(tmp_path, as_zip):
    files = {
        "set/cat/img10.png": image_bytes(RED, (6, 6)),
        "set/cat/img2.png": image_bytes(GREEN, (6, 6)),
        "set/dog/a.bmp": image_bytes(BLUE, (6, 6), "BMP"),
        "set/dog/notes.txt": "not an image, ignored",
        "set/.hidden/x.png": image_bytes(RED, (6, 6)),
    }
    path = tmp_path / ("imgs.zip" if as_zip else "imgs")
    write_tree(path, files, as_zip=as_zip)
    ds = load(f"folder:{path}", progress=False)
    train = ds.splits["train"]
    assert train.ids == ["set/cat/img2.png", "set/cat/img10.png", "set/dog/a.bmp"]  # natural order
    assert train.labels.tolist() == [0, 0, 1] and ds.class_names == ["cat", "dog"]
    assert train.images[:, :, 3, 3].tolist() == [list(GREEN), list(RED), list(BLUE)]
    assert ds.image_shape == (3, 6, 6) and ds.normalization == "center" and ds.skipped == []


def test_size_mode_and_resize_options(tmp_path):
    write_tree(
        tmp_path, {"a.png": image_bytes(RED, (40, 20)), "b.jpg": image_bytes(GREEN, (30, 60), "JPEG")}, as_zip=False
    )
    with pytest.raises(InfomaxError, match=r"different sizes: .*40×20.*a.png.*30×60.*b.jpg.*size="):
        load(f"folder:{tmp_path}", progress=False)
    ds = load(f"folder:{tmp_path},size=16,mode=L,resize=pad", progress=False)
    assert ds.image_shape == (1, 16, 16)
    assert ds.options == {"size": 16, "mode": "L", "resize": "pad", "norm": "center"}
    assert ds.splits["train"].images[0, 0, 0, 0] == 0  # padding is black


def test_modes_in_one_folder_all_convert(tmp_path):
    files = {
        "l.png": image_bytes(128, (4, 4), mode="L"),
        "p.gif": image_bytes(RED, (4, 4), "GIF"),
        "rgba.png": image_bytes((0, 0, 255, 255), (4, 4), mode="RGBA"),
        "cmyk.jpg": image_bytes((0, 0, 0, 0), (4, 4), "JPEG", mode="CMYK"),
        "x.webp": image_bytes(GREEN, (4, 4), "WEBP", lossless=True),
        "t.tiff": image_bytes(BLUE, (4, 4), "TIFF"),
    }
    write_tree(tmp_path, files, as_zip=False)
    ds = load(f"folder:{tmp_path}", progress=False)
    assert ds.image_shape == (3, 4, 4) and len(ds.splits["train"]) == 6 and ds.skipped == []


@pytest.mark.parametrize("as_zip", [False, True])
def test_bad_files_are_skipped_and_reported(tmp_path, capsys, as_zip):
    files = {f"bad/{name}": data for name, data in bad_files().items()}
    files["good/ok.png"] = image_bytes(RED, (8, 8))
    files["good/ok2.png"] = image_bytes(BLUE, (8, 8))
    path = tmp_path / ("mixed.zip" if as_zip else "mixed")
    write_tree(path, files, as_zip=as_zip)
    ds = load(f"folder:{path}", progress=False)
    assert ds.splits["train"].ids == ["good/ok.png", "good/ok2.png"]
    assert ds.splits["train"].labels.tolist() == [1, 1] and ds.class_names == ["bad", "good"]
    reasons = dict(ds.skipped)
    assert set(reasons) == {f"bad/{name}" for name in bad_files()}
    assert "empty file" in reasons["bad/empty.jpg"] and "megapixels" in reasons["bad/bomb.png"]
    assert "not an image" in reasons["bad/text.png"] and "truncated" in reasons["bad/truncated.jpg"]
    report = (tmp_path / "infomax-home").glob("decoded/*/skipped.txt")
    lines = next(report).read_text().splitlines()
    assert len(lines) == 5 and all("\t" in line for line in lines)
    assert "skipped 5 files" in capsys.readouterr().err


def test_nothing_decodes(tmp_path):
    write_tree(tmp_path, bad_files(), as_zip=False)
    with pytest.raises(InfomaxError, match=r"none of the 5 image files in .* could be decoded \(.*empty.jpg"):
        load(f"folder:{tmp_path}", progress=False)


@pytest.mark.parametrize("files", [{}, {"readme.txt": "hello", "sub/data.csv": "1,2"}])
def test_no_images(tmp_path, files):
    write_tree(tmp_path, files, as_zip=False)
    with pytest.raises(InfomaxError, match=f"{tmp_path} holds no images"):
        load(f"folder:{tmp_path}", progress=False)


def test_missing_path_and_wrong_file_type(tmp_path):
    with pytest.raises(InfomaxError, match="nowhere does not exist"):
        load(f"folder:{tmp_path / 'nowhere'}", progress=False)
    single = tmp_path / "one.png"
    single.write_bytes(image_bytes())
    with pytest.raises(InfomaxError, match="neither a folder nor a zip archive"):
        load(f"folder:{single}", progress=False)
    broken = tmp_path / "broken.zip"
    write_tree(broken, {"a.png": image_bytes()}, as_zip=True)
    broken.write_bytes(broken.read_bytes()[:-30])
    with pytest.raises(InfomaxError, match="broken.zip"):
        load(f"folder:{broken}", progress=False)


def test_damaged_zip_member_is_skipped(tmp_path):
    path = tmp_path / "z.zip"
    write_tree(path, {"a.png": image_bytes(RED, (8, 8)), "b.png": image_bytes(BLUE, (8, 8))}, as_zip=True)
    data = bytearray(path.read_bytes())
    at = data.index(b"IDAT", data.index(b"b.png"))  # flip a byte inside the second member
    data[at + 8] ^= 0xFF
    path.write_bytes(bytes(data))
    ds = load(f"folder:{path}", progress=False)
    assert ds.splits["train"].ids == ["a.png"] and "CRC" in dict(ds.skipped)["b.png"]


def test_large_image_is_downscaled(tmp_path):
    big = Image.radial_gradient("L").resize((1200, 900)).convert("RGB")
    big.save(tmp_path / "big.jpg", quality=90)
    ds = load(f"folder:{tmp_path},size=32", progress=False)
    assert ds.image_shape == (3, 32, 32) and np.ptp(ds.splits["train"].images) > 100
