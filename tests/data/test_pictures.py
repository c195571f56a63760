"""Pictures come from the source files at up to 256 px (aspect kept, cached); data without source
files keep their pixels, enlarged; classes.txt and words.txt name the classes in label_name."""

import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from infomax.data import load
from infomax.data.pictures import Pictures, fitted, pixel_picture, source_picture
from infomax.embed.sources import split_metadata
from infomax.errors import InfomaxError

from .canonical import write_tiny_imagenet
from .photos import FILES, decoded, photo, reference, write_photos


def test_fitted_keeps_the_aspect_ratio_and_never_enlarges():
    assert fitted(300, 200, 256) == (256, 171)  # 200 × 256/300 = 170.67
    assert fitted(200, 300, 256) == (171, 256)
    assert fitted(100, 50, 256) == (100, 50)
    assert fitted(5000, 1, 256) == (256, 1)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_source_picture_is_the_file_resized_in_float(fmt):
    from .photos import encoded

    data = encoded(photo(300, 200, 7), fmt)
    got = np.asarray(source_picture(data, 256), dtype=np.float64)
    want = reference(data, 256)
    assert got.shape == want.shape == (171, 256, 3)
    diff = np.abs(got - want)
    assert diff.max() <= 2 and diff.mean() < 0.6, (diff.max(), diff.mean())


def test_a_large_jpeg_is_decoded_reduced_and_still_matches():
    from .photos import encoded

    data = encoded(np.kron(photo(300, 200, 3), np.ones((4, 4, 1), np.uint8)), "JPEG")  # 1200×800
    got = np.asarray(source_picture(data, 256), dtype=np.float64)
    want = reference(data, 256)  # full decode, then resize: draft (1/4 in libjpeg) changes little
    assert got.shape == want.shape == (171, 256, 3)
    assert np.abs(got - want).mean() < 3


def test_refused_files_raise_the_decoders_error():
    with pytest.raises(InfomaxError, match="not accepted|not an image"):
        source_picture(b"%!PS-Adobe-3.0 EPSF-3.0\n", 256)
    with pytest.raises(InfomaxError, match="empty"):
        source_picture(b"", 256)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    files = write_photos(root)
    return root, files


def test_pictures_of_a_folder_are_its_photos_not_the_training_pixels(folder, tmp_path):
    root, files = folder
    ds = load(f"folder:{root},size=32", progress=False)
    assert ds.image_shape == (3, 32, 32)
    pictures = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures")
    ids = ds.splits["train"].ids
    for row, name in enumerate(ids):
        picture = pictures.picture(row)
        assert picture.media_type == "image/jpeg" and picture.from_source
        got = decoded(picture.data)
        want = reference(files[name], 256)
        w, h = FILES[name][:2]
        assert got.shape == want.shape and max(got.shape[:2]) == 256
        assert abs(got.shape[1] / got.shape[0] - w / h) < 0.01  # the source's aspect ratio
        error = np.abs(got - want).mean()
        assert error < 4.5, (name, error)  # JPEG q90 on fine stripes (the pixels themselves: see above)
        # the training pixels, enlarged to the same size, are far from the photo
        blurred = np.asarray(Image.fromarray(ds.splits["train"].images[row].transpose(1, 2, 0)).resize(
            (got.shape[1], got.shape[0]), Image.Resampling.BICUBIC), dtype=np.float64)
        assert np.abs(blurred - want).mean() > 4 * error


def test_the_cache_is_used_on_the_second_request(folder, tmp_path):
    root, files = folder
    ds = load(f"folder:{root},size=32", progress=False)
    first = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures")
    data = first.picture(1).data
    assert first.picture(1).data == data and (first.decodes, first.disk_hits) == (1, 0)  # memory
    cached = list((tmp_path / "pictures").rglob("*.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == data
    second = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures")
    assert second.picture(1).data == data and (second.decodes, second.disk_hits) == (0, 1)  # disk
    # a changed file (new size and time) is decoded again
    name = ds.splits["train"].ids[1]
    from .photos import encoded

    (root / name).write_bytes(encoded(photo(300, 200, 99), "PNG"))
    os.utime(root / name, ns=(1, 1))
    third = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures")
    assert third.picture(1).data != data and third.decodes == 1
    assert len(list((tmp_path / "pictures").rglob("*.jpg"))) == 2


def test_the_memory_cache_is_bounded(folder, tmp_path):
    root, _ = folder
    ds = load(f"folder:{root},size=32", progress=False)
    one = len(Pictures.for_dataset(ds, cache_dir=None).picture(0).data)
    pictures = Pictures.for_dataset(ds, cache_dir=None, memory_bytes=one)  # room for picture 0 only
    pictures.picture(0), pictures.picture(1), pictures.picture(0)
    assert pictures.decodes == 3 and pictures._held <= one


def test_a_zip_member_is_shown_from_its_bytes(folder, tmp_path):
    root, files = folder
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name, data in files.items():
            z.writestr(f"photos/{name}", data)
    ds = load(f"folder:{archive},size=32", progress=False)
    pictures = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures")
    name = ds.splits["train"].ids[0]
    assert name == "photos/cats/a.png"
    got = decoded(pictures.picture(0).data)
    assert np.abs(got - reference(files["cats/a.png"], 256)).mean() < 4.5
    again = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures")
    assert again.picture(0).data == pictures.picture(0).data and again.decodes == 0  # keyed by the member's CRC


def test_a_missing_source_file_falls_back_to_the_pixels(folder, tmp_path):
    root, _ = folder
    ds = load(f"folder:{root},size=32", progress=False)
    (root / ds.splits["train"].ids[2]).unlink()
    picture = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures").picture(2)
    assert picture.media_type == "image/png" and not picture.from_source
    expected = ds.splits["train"].images[2].transpose(1, 2, 0).repeat(8, 0).repeat(8, 1)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(picture.data))), expected)


def test_data_without_source_files_keeps_its_pixels_enlarged():
    ds = load("digits,size=16", progress=False)
    pictures = Pictures.for_dataset(ds)
    assert not pictures.from_sources
    picture = pictures.picture(5)
    assert picture.media_type == "image/png"
    pixels = ds.splits["train"].images[5][0]  # 16×16 gray
    expected = np.repeat(pixels.repeat(16, 0).repeat(16, 1)[:, :, None], 3, axis=2)  # 256×256, nearest
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(picture.data))), expected)
    np.testing.assert_array_equal(pixel_picture(ds.splits["train"].images[5], 100)[::6, ::6, 0], pixels)


def test_classes_txt_names_reach_label_name(folder):
    root, _ = folder
    ds = load(f"folder:{root},size=32", progress=False)
    assert ds.class_names == ["domestic cat", "dog"] and ds.class_ids == ["cats", "dogs"]
    meta = split_metadata("train", ds.splits["train"], ds.class_names)
    assert meta["label_name"].tolist() == ["domestic cat", "domestic cat", "dog", "dog"]
    assert load(f"folder:{root},size=32", progress=False).class_names == ["domestic cat", "dog"]  # from the cache


def test_classes_txt_partial_shared_and_bad(tmp_path):
    root = tmp_path / "p"
    write_photos(root, "dogs\tdog\nowls\towl\n")  # cats unlisted, owls not a folder here
    assert load(f"folder:{root},size=8", progress=False).class_names == ["cats", "dog"]
    (root / "classes.txt").write_text("cats\tpet\ndogs\tpet\n")
    assert load(f"folder:{root},size=8", progress=False).class_names == ["pet (cats)", "pet (dogs)"]
    (root / "classes.txt").write_text("cats domestic cat\n")
    with pytest.raises(InfomaxError, match=r"classes.txt line 1: expected FOLDER<TAB>NAME"):
        load(f"folder:{root},size=8", progress=False)


def test_words_txt_names_reach_label_name_and_wnids_stay(tmp_path):
    path = tmp_path / "tiny-imagenet-200.zip"
    write_tiny_imagenet(path, per_class=2, as_zip=True)
    ds = load(f"tiny-imagenet:{path}", progress=False)
    assert ds.class_ids == ["n01", "n02", "n03"]
    meta = split_metadata("train", ds.splits["train"], ds.class_names)
    assert meta["label_name"].tolist() == ["goldfish"] * 2 + ["tabby"] * 2 + ["bullfrog"] * 2
    pictures = Pictures.for_dataset(ds, cache_dir=tmp_path / "pictures")
    assert pictures.picture(0).from_source  # its JPEGs are shown from the zip
