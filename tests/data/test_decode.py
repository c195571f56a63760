"""decode_image: every Pillow mode to RGB or L, three resize modes, and clear errors for bad input."""

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from infomax.data.decode import MAX_PIXELS, BadImage, decode_image
from infomax.errors import InfomaxError

from .canonical import bad_files, image_bytes, png_header


def _save(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def _bands() -> bytes:
    """96×32: red, green, blue vertical bands of 32 columns."""
    pixels = np.zeros((32, 96, 3), np.uint8)
    pixels[:, :32, 0] = pixels[:, 32:64, 1] = pixels[:, 64:, 2] = 255
    return _save(Image.fromarray(pixels))


def test_png_pixels_exact_in_chw_order():
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[1, 2] = (10, 20, 30)  # row 1, column 2
    out = decode_image(_save(Image.fromarray(pixels)), size=None)
    assert out.shape == (3, 4, 6) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert out[:, 1, 2].tolist() == [10, 20, 30]
    assert out.sum() == 60


def test_grayscale_output_has_one_channel():
    out = decode_image(image_bytes((200, 100, 0), (5, 5)), size=None, mode="L")
    assert out.shape == (1, 5, 5)
    assert int(out[0, 0, 0]) == round(200 * 0.299 + 100 * 0.587)


def test_shorter_crop_keeps_the_center():
    out = decode_image(_bands(), size=16)
    assert out.shape == (3, 16, 16)
    assert out[1].min() > 200 and out[0].max() < 40 and out[2].max() < 40  # only the green middle


def test_plain_resize_stretches():
    out = decode_image(_bands(), size=24, resize="resize")
    assert out.shape == (3, 24, 24)
    assert out[0, :, 0].min() > 240 and out[2, :, -1].min() > 240  # red left edge, blue right edge


def test_pad_letterboxes_with_black():
    out = decode_image(_bands(), size=24, resize="pad")
    assert out.shape == (3, 24, 24)
    assert out[:, 0, :].max() == 0 and out[:, -1, :].max() == 0  # black rows above and below
    assert out[0, 12, 0] > 240 and out[2, 12, -1] > 240


def test_jpeg_draft_downscale_is_close():
    data = image_bytes((30, 120, 220), (512, 256), "JPEG", quality=95)
    out = decode_image(data, size=32)
    assert out.shape == (3, 32, 32)
    assert np.abs(out.reshape(3, -1).mean(1) - [30, 120, 220]).max() < 4


@pytest.mark.parametrize(
    "mode, color, expected",
    [
        ("L", 77, (77, 77, 77)),
        ("1", 1, (255, 255, 255)),
        ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
        ("RGBA", (0, 0, 255, 0), (255, 255, 255)),  # fully transparent: white background
        ("RGBA", (0, 0, 255, 255), (0, 0, 255)),
        ("LA", (0, 128), (128, 128, 128)),  # half-transparent black over white
        ("I;16", 65535, (255, 255, 255)),
        ("I", 32768, (128, 128, 128)),
        ("F", 300.0, (255, 255, 255)),
    ],
)
def test_modes_convert_to_rgb(mode, color, expected):
    fmt = "TIFF" if mode in ("CMYK", "F", "I") else "PNG"
    out = decode_image(_save(Image.new(mode, (3, 3), color), fmt), size=None)
    assert np.abs(out[:, 1, 1].astype(int) - expected).max() <= 1


def test_palette_with_transparency():
    image = Image.new("P", (2, 2), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    image.info["transparency"] = 0
    out = decode_image(_save(image), size=None)
    assert out[:, 0, 0].tolist() == [255, 255, 255] and out[:, 1, 1].tolist() == [0, 255, 0]


def test_cmyk_jpeg_and_other_formats():
    cmyk = _save(Image.new("CMYK", (8, 8), (0, 0, 0, 0)), "JPEG")
    assert decode_image(cmyk, size=4).shape == (3, 4, 4)
    for fmt in ("BMP", "GIF", "WEBP", "TIFF"):
        out = decode_image(
            image_bytes((0, 0, 255), (8, 8), fmt, **({"lossless": True} if fmt == "WEBP" else {})), size=None
        )
        assert out.shape == (3, 8, 8) and out[2].min() > 240, fmt


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    assert decode_image(out.getvalue(), size=None)[0].min() > 240


def test_reads_paths(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes((1, 2, 3), (4, 4)))
    assert decode_image(path, size=2).shape == (3, 2, 2)
    assert decode_image(str(path), size=None)[:, 0, 0].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty.jpg", "empty file"),
        ("text.png", "not an image"),
        ("truncated.jpg", "truncated"),
        ("garbage.gif", "damaged|not an image|truncated"),
        ("bomb.png", "megapixels"),
    ],
)
def test_bad_bytes_raise_a_clear_error(name, reason):
    with pytest.raises(BadImage, match=reason):
        decode_image(bad_files()[name], size=32)


def test_pixel_limit_is_ours_not_only_pillows():
    width = int(MAX_PIXELS**0.5) + 100  # over our limit, under Pillow's own warning threshold
    with pytest.raises(InfomaxError, match=f"{width}×{width} pixels is over the limit"):
        decode_image(png_header(width, width), size=None)


def test_path_errors_name_the_file(tmp_path):
    with pytest.raises(InfomaxError, match="missing.png: no such file"):
        decode_image(tmp_path / "missing.png", size=None)
    with pytest.raises(InfomaxError, match="is a folder"):
        decode_image(tmp_path, size=None)
    (tmp_path / "t.jpg").write_bytes(bad_files()["truncated.jpg"])
    with pytest.raises(InfomaxError, match="t.jpg: truncated"):
        decode_image(tmp_path / "t.jpg", size=None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"size": 0}, "positive"),
        ({"size": 8, "mode": "CMYK"}, "RGB or L"),
        ({"size": 8, "resize": "fill"}, "resize"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(InfomaxError, match=message):
        decode_image(image_bytes(), **kwargs)


_VALID = [image_bytes((5, 6, 7), (16, 12), fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=600),
        st.tuples(st.sampled_from(_VALID), st.integers(0, 400)).map(lambda t: t[0][: t[1]]),
        st.tuples(st.sampled_from(_VALID), st.integers(0, 300), st.integers(0, 255)).map(
            lambda t: t[0][: t[1]] + bytes([t[2]]) + t[0][t[1] + 1 :]
        ),
    )
)
def test_any_bytes_give_pixels_or_a_clear_error(data):
    try:
        out = decode_image(data, size=8)
    except InfomaxError as exc:
        assert str(exc).startswith("image: ")
    else:
        assert out.shape == (3, 8, 8) and out.dtype == np.uint8


def test_exif_orientation_is_applied():
    pixels = np.zeros((10, 20, 3), np.uint8)  # stored 20 wide, 10 high, red on the left
    pixels[:, :10, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = _save(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())
    out = decode_image(data, size=None)
    assert out.shape == (3, 20, 10)  # displayed 10 wide, 20 high
    assert out[0, :8].mean() > 200 and out[0, 12:].mean() < 50  # the red half is now on top


def test_numpy_integer_size():
    assert decode_image(image_bytes(size=(9, 9)), size=np.int64(4)).shape == (3, 4, 4)
