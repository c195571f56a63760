"""Hostile data files: refused formats, pixel bombs, zip bombs, broken links and odd files."""

import io
import os
import time
import warnings
import zipfile

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from infomax.data import load
from infomax.data.decode import MAX_FILE_BYTES, MAX_JPEG_PIXELS, MAX_PIXELS, BadImage, decode_image
from infomax.data.sources import MAX_RATIO, ZipTree, check_member

from .canonical import image_bytes, write_tree


def _save(image: Image.Image, fmt: str, **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def test_limits_are_the_documented_figures():
    assert MAX_PIXELS == 4096 * 4096 and MAX_JPEG_PIXELS == 4 * 4096 * 4096
    assert MAX_FILE_BYTES == 128 * 2**20 and MAX_RATIO == 100


def test_eps_is_refused_without_ghostscript(monkeypatch):
    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append("gs"))
    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", lambda self: calls.append("parsed"))
    eps = _save(Image.new("RGB", (8, 8), (1, 2, 3)), "EPS")
    assert eps.startswith(b"%!PS")
    with pytest.raises(BadImage, match=r"PostScript \(EPS\) files are not accepted: send JPEG, PNG"):
        decode_image(eps, size=8)
    assert calls == []  # the EPS plugin never saw the bytes


@pytest.mark.parametrize("fmt", ["PDF", "ICO", "PPM", "TGA"])
def test_other_pillow_formats_are_refused(fmt):
    data = _save(Image.new("RGB", (16, 16), (9, 9, 9)), fmt)
    with pytest.raises(BadImage, match="not accepted|not an image"):
        decode_image(data, size=8)


def test_png_bomb_is_refused_from_its_header_without_pillows_warning():
    bomb = _save(Image.new("L", (8000, 8000), 0), "PNG")  # 64 MP of one colour
    assert len(bomb) < 100_000
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(BadImage, match="8000×8000 pixels is over the limit of 16.8 megapixels"):
            decode_image(bomb, size=64)
    assert time.perf_counter() - start < 0.5 and seen == []


def test_pixel_limit_edge():
    assert decode_image(_save(Image.new("L", (4096, 4096), 7), "PNG"), size=4).tolist() == np.full((3, 4, 4), 7).tolist()
    with pytest.raises(BadImage, match="4097×4096 pixels"):
        decode_image(_save(Image.new("L", (4097, 4096), 7), "PNG"), size=4)


def test_large_jpeg_is_decoded_reduced_and_counted_after_the_reduction():
    photo = _save(Image.new("L", (8000, 6000), 200), "JPEG", quality=80)  # 48 MP > MAX_PIXELS
    out = decode_image(photo, size=64, mode="L")
    assert out.shape == (1, 64, 64) and abs(int(out.mean()) - 200) <= 1
    with pytest.raises(BadImage, match="8000×6000 pixels is over the limit of 16.8"):
        decode_image(photo, size=None)  # the full size is asked for: no reduction
    huge = _save(Image.new("L", (9000, 8000), 200), "JPEG", quality=50)  # 72 MP > MAX_JPEG_PIXELS
    with pytest.raises(BadImage, match="9000×8000 pixels is over the limit of 67.1"):
        decode_image(huge, size=64)


@pytest.mark.parametrize("alpha", [0, 64, 128, 255])
def test_alpha_is_composited_over_white(alpha):
    color = np.array([200, 40, 10])
    out = decode_image(_save(Image.new("RGBA", (4, 4), (*color.tolist(), alpha)), "PNG"), size=None)
    a = alpha / 255.0
    expected = color * a + 255.0 * (1 - a)  # float64 reference
    assert np.abs(out[:, 2, 2] - expected).max() <= 1.0


def test_zip_bomb_member_is_skipped_and_named(tmp_path):
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("ok.png", image_bytes((255, 0, 0), (8, 8)))
        z.writestr("bomb.bmp", bytes(4_000_000))  # deflates about 1000:1
    info = zipfile.ZipFile(path).getinfo("bomb.bmp")
    assert info.file_size / info.compress_size > 900
    ds = load(f"folder:{path}", progress=False, cache_dir=str(tmp_path / "cache"))
    assert ds.splits["train"].ids == ["ok.png"]
    reason = dict(ds.skipped)["bomb.bmp"]
    assert "archive member bomb.bmp expands" in reason and f"over the limit of {MAX_RATIO}:1" in reason
    lines = next((tmp_path / "cache").glob("decoded/*/skipped.txt")).read_text().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bomb.bmp\t") and "expands" in lines[0]


def test_zip_member_is_never_decompressed_past_its_declared_size(tmp_path):
    path = tmp_path / "lies.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", bytes(range(256)) * 4000)  # 1,024,000 bytes
    data = bytearray(path.read_bytes())
    for magic, at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size, local and central
        start = data.index(magic)
        data[start + at : start + at + 4] = (1000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    tree = ZipTree(path)
    with pytest.raises(OSError, match=r"damaged archive member a.png \(1,001 bytes or more, 1,000 declared\)"):
        tree.read("a.png")
    tree.close()


def test_zip_member_over_the_size_limit():
    info = zipfile.ZipInfo("huge.tif")
    info.file_size = info.compress_size = MAX_FILE_BYTES + 1
    with pytest.raises(OSError, match="archive member huge.tif is 134,217,729 bytes uncompressed, over the limit"):
        check_member(info)
    info.file_size = info.compress_size = MAX_FILE_BYTES
    check_member(info)  # stored (ratio 1) at the limit: read


def test_broken_links_and_odd_files_are_listed_in_skipped_txt(tmp_path):
    root = tmp_path / "imgs"
    write_tree(root, {"a/ok.png": image_bytes((0, 255, 0), (8, 8)), "a/ok2.png": image_bytes((0, 0, 255), (8, 8))},
               as_zip=False)
    os.symlink(root / "a" / "gone.png", root / "a" / "dangling.png")
    os.symlink(root / "a" / "loop.png", root / "a" / "loop.png")
    os.mkfifo(root / "a" / "pipe.png")  # reading it would wait forever
    with open(root / "a" / "huge.png", "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    start = time.perf_counter()
    ds = load(f"folder:{root}", progress=False, cache_dir=str(tmp_path / "cache"))
    assert time.perf_counter() - start < 60
    assert ds.splits["train"].ids == ["a/ok.png", "a/ok2.png"]
    reasons = dict(ds.skipped)
    assert "a broken symbolic link (to " in reasons["a/dangling.png"] and "gone.png" in reasons["a/dangling.png"]
    assert "a symbolic link in a loop" in reasons["a/loop.png"]
    assert "not a regular file" in reasons["a/pipe.png"]
    assert "134,217,729 bytes, over the limit of 128 MB" in reasons["a/huge.png"]
    lines = next((tmp_path / "cache").glob("decoded/*/skipped.txt")).read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in lines) == ["a/dangling.png", "a/huge.png", "a/loop.png", "a/pipe.png"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_listed(tmp_path):
    write_tree(tmp_path, {"ok.png": image_bytes(), "locked.png": image_bytes()}, as_zip=False)
    (tmp_path / "locked.png").chmod(0)
    ds = load(f"folder:{tmp_path}", progress=False, cache_dir=str(tmp_path / "cache"))
    assert "Permission denied" in dict(ds.skipped)["locked.png"]
