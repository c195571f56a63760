"""Decode one image (bytes or a file) into a uint8 C×H×W array: robust to bad input, and quick.

Every reader, the search command and the web service go through here, so untrusted files are
the normal case: anything that is not a readable image raises `BadImage` (an InfomaxError)
with a short reason, and images over MAX_PIXELS are refused before their pixels are decoded.
"""

from __future__ import annotations

import io
import numbers
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from infomax.data.spec import RESIZE_MODES
from infomax.errors import InfomaxError

MAX_PIXELS = 50_000_000  # refuse larger images (decompression bombs) before decoding them
MODES = ("RGB", "L")
RESAMPLE = Image.Resampling.BICUBIC
BACKGROUND = 255  # transparent pixels are composited over white
ORIENTATION = 0x0112  # the EXIF orientation tag
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


class BadImage(InfomaxError):
    """One image could not be decoded; the message is the short reason."""


def decode_image(
    source: bytes | str | Path,
    *,
    size: int | None,
    mode: str = "RGB",
    resize: str = "shorter-crop",
) -> np.ndarray:
    """Decode an image into uint8 C×H×W (C = 3 for RGB, 1 for L).

    size: output side (size×size), or None to keep the image's own size.
    resize: 'shorter-crop' (shorter side to `size`, then center crop), 'resize' (stretch),
        or 'pad' (fit inside, pad with black).
    Raises InfomaxError naming the file and the reason for anything that is not a readable image.
    """
    check_arguments(size, mode, resize)
    size = None if size is None else int(size)
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, data = "image", bytes(source)
    else:
        name = str(source)
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise InfomaxError(f"{name}: no such file") from None
        except IsADirectoryError:
            raise InfomaxError(f"{name}: is a folder, not an image file") from None
        except OSError as exc:
            raise InfomaxError(f"{name}: cannot read it ({exc.strerror or exc})") from None
    try:
        return np.ascontiguousarray(decode_array(data, size, mode, resize))
    except BadImage as exc:
        raise BadImage(f"{name}: {exc}") from None


def check_arguments(size: int | None, mode: str, resize: str) -> None:
    """Raise InfomaxError for a size, mode or resize that decode_image cannot use."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1):
        raise InfomaxError(f"image size must be a positive number of pixels, got {size!r}")
    if mode not in MODES:
        raise InfomaxError(f"image mode must be RGB or L, got {mode!r}")
    if resize not in RESIZE_MODES:
        raise InfomaxError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")


def decode_array(data: bytes, size: int | None, mode: str, resize: str) -> np.ndarray:
    """The decoding step behind decode_image, for trusted arguments: returns a C×H×W view."""
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        image = _open(data, size, mode)
        if "exif" in image.info and image.getexif().get(ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)  # photos taken sideways are stored sideways
        image = to_mode(image, mode)
        if size is not None:
            image = fit(image, size, resize)
        pixels = np.asarray(image)  # H×W or H×W×3
    except BadImage:
        raise
    except MemoryError:
        raise BadImage("not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on malformed input
        raise BadImage(_reason(exc)) from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _open(data: bytes, size: int | None, mode: str) -> Image.Image:
    """Open and fully decode, refusing huge images before their pixels are read."""
    # The pixel limit is checked explicitly (no process-wide warning filters: decoding runs in threads).
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise BadImage(f"refused: larger than {MAX_PIXELS // 1_000_000} megapixels (decompression bomb)") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise BadImage(
            f"refused: {width}×{height} pixels is over the limit of "
            f"{MAX_PIXELS // 1_000_000} megapixels (decompression bomb)"
        )
    if width == 0 or height == 0:
        raise BadImage(f"empty image ({width}×{height} pixels)")
    if size is not None and image.format == "JPEG":
        image.draft(mode, (size, size))  # let libjpeg scale down by 2/4/8 while decoding
    image.load()
    return image


def to_mode(image: Image.Image, mode: str) -> Image.Image:
    """Convert any Pillow mode (palette, CMYK, alpha, 16-bit, ...) to 'RGB' or 'L'."""
    if image.mode == mode:
        return image
    if image.mode in _SIXTEEN_BIT:
        image = _to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode == "L" and "transparency" in image.info:
        image = image.convert("LA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (BACKGROUND,) * 4)
        image = Image.alpha_composite(background, rgba)
    return image.convert(mode)


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit or float grayscale to 8-bit L, keeping the full range."""
    values = np.asarray(image)
    if image.mode == "F":
        out = np.clip(values, 0, 255)
    elif image.mode.startswith("I;16") or values.max(initial=0) > 255:
        out = np.clip(values, 0, 65535) >> 8
    else:
        out = np.clip(values, 0, 255)
    return Image.fromarray(out.astype(np.uint8), "L")


def fit(image: Image.Image, size: int, resize: str) -> Image.Image:
    """Make a size×size image: 'shorter-crop', 'resize' (stretch) or 'pad' (letterbox, black)."""
    if image.size == (size, size):
        return image
    if resize == "shorter-crop":
        return ImageOps.fit(image, (size, size), RESAMPLE)
    if resize == "resize":
        return image.resize((size, size), RESAMPLE)
    return ImageOps.pad(image, (size, size), RESAMPLE, color=0)


def _reason(exc: Exception) -> str:
    """A short, human reason for a decoding failure."""
    if isinstance(exc, UnidentifiedImageError):
        return "not an image (unknown or unsupported format)"
    text = str(exc).strip() or type(exc).__name__
    if "truncated" in text.lower() or isinstance(exc, EOFError):
        return f"truncated or damaged image ({text})"
    return f"damaged image ({text})"
