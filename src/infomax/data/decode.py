"""Decode one image (bytes or a file) into a uint8 C×H×W array: robust to bad input, and quick.

Every reader, the search command and the web service go through here, so untrusted files are
the normal case: anything that is not a readable image raises `BadImage` (an InfomaxError)
with a short reason. The limits, all checked before any pixel is decoded:
    FORMATS           only these Pillow plugins are ever tried (no EPS/Ghostscript, PDF, PSD, ...)
    MAX_PIXELS        pixels decoded per image: 4096² (spec.MAX_SIZE², the largest output side);
                      a JPEG is decoded at 1/2-1/8 of its side (`draft`) when the output is smaller,
                      and the limit applies to that reduced size
    MAX_JPEG_PIXELS   a JPEG's own size, even when decoded reduced (libjpeg's buffers grow with it)
    MAX_FILE_BYTES    the size of an image file read from disk
"""

from __future__ import annotations

import io
import numbers
import os
import stat
import struct
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL import (  # noqa: F401  (importing a plugin registers its format: only these are loaded)
    BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin,
)

from infomax.data.spec import MAX_SIZE, RESIZE_MODES
from infomax.errors import InfomaxError

FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # the only decoders ever tried
DETECTED = frozenset(FORMATS) | {"MPO"}  # Pillow names a JPEG with extra frames (most camera photos) MPO
FORMAT_NAMES = "JPEG, PNG, WebP, GIF, BMP or TIFF"
MAX_PIXELS = MAX_SIZE * MAX_SIZE  # 16,777,216: pixels decoded per image (after a JPEG's draft reduction)
MAX_JPEG_PIXELS = 4 * MAX_PIXELS  # 67 MP: a JPEG's own size (a 50 MP camera photo fits), decoded reduced
MAX_FILE_BYTES = 128 * 1024 * 1024  # an image file read from disk or a zip
MODES = ("RGB", "L")
RESAMPLE = Image.Resampling.BICUBIC
BACKGROUND = 255  # transparent pixels are composited over white
ORIENTATION = 0x0112  # the EXIF orientation tag
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_NPY_HEADERS: dict[bytes, tuple] = {}  # .npy header bytes -> the shape of its uint8 C-order array


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
            data = read_file(source)
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


def read_file(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """A regular file's bytes, at most `limit` of them; OSError (with a reason) for anything else.

    Opened non-blocking, so a named pipe or a device given as an image is refused, not waited on.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, "is a folder", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file (a pipe, socket or device)")
        if st.st_size > limit:
            raise OSError(f"{st.st_size:,} bytes, over the limit of {limit // (1024 * 1024)} MB for one image file")
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew since fstat
        raise OSError(f"over the limit of {limit // (1024 * 1024)} MB for one image file")
    return data


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
    except Image.DecompressionBombError:  # as in identify, for frames read later
        raise _too_large_bomb() from None
    except MemoryError:
        raise BadImage("not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on malformed input
        raise BadImage(_reason(exc)) from None
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def decode_npy(data: bytes, size: int | None, mode: str | None, resize: str) -> np.ndarray:
    """Raw pixels stored as a .npy file (uint8, C×H×W or H×W, C 1 or 3) -> C×H×W in `mode` (None: as stored).

    The cheap image member of WebDataset shards (`infomax data shard --format npy`): no codec,
    only the header is parsed. Pickled arrays are refused; other sizes and modes go through Pillow.
    """
    pixels = _read_npy(data)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[0] not in (1, 3) or 0 in pixels.shape:
        raise BadImage(f"a .npy image must be uint8 C×H×W with C 1 or 3, got {pixels.dtype} {pixels.shape}")
    if pixels.shape[1] * pixels.shape[2] > MAX_PIXELS:
        raise _too_large(pixels.shape[2], pixels.shape[1], MAX_PIXELS)
    channels = pixels.shape[0] if mode is None else 1 if mode == "L" else 3
    mode = mode or ("L" if channels == 1 else "RGB")
    if pixels.shape[0] == channels and (size is None or pixels.shape[1:] == (size, size)):
        return pixels
    image = Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0))
    image = fit(image.convert(mode), size, resize) if size is not None else image.convert(mode)
    out = np.asarray(image)
    return out[None] if out.ndim == 2 else out.transpose(2, 0, 1)


def _read_npy(data: bytes) -> np.ndarray:
    """np.load of .npy bytes; a header seen before skips numpy's parsing of it (a third of the time)."""
    end = 10 + int.from_bytes(data[8:10], "little") if data[:7] == b"\x93NUMPY\x01" else 0
    shape = _NPY_HEADERS.get(data[:end]) if end else None
    if shape is not None and len(data) - end == int(np.prod(shape)):
        return np.frombuffer(data, np.uint8, offset=end).reshape(shape)
    try:
        pixels = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises ValueError, EOFError, ... on a bad header
        raise BadImage(f"not a readable .npy array ({_reason(exc)})") from None
    if end and pixels.dtype == np.uint8 and pixels.flags.c_contiguous and len(_NPY_HEADERS) < 64:
        _NPY_HEADERS[data[:end]] = pixels.shape
    return pixels


def _open(data: bytes, size: int | None, mode: str) -> Image.Image:
    return open_limited(data, mode, None if size is None else (lambda w, h: (size, size)))


def open_limited(data: bytes, mode: str, needed=None) -> Image.Image:
    """Open and fully decode, refusing other formats and huge images before their pixels are read.

    needed(width, height) -> (w, h): the smallest size the caller will use; a JPEG then decodes
    at 1/2, 1/4 or 1/8 of its side (libjpeg's draft) when that stays at least that large.
    """
    image = identify(data)
    width, height = image.size
    if width == 0 or height == 0:
        raise BadImage(f"empty image ({width}×{height} pixels)")
    jpeg = image.format in ("JPEG", "MPO")
    if jpeg and width * height > MAX_JPEG_PIXELS:
        raise _too_large(width, height, MAX_JPEG_PIXELS)
    if jpeg and needed is not None:
        image.draft(mode, needed(width, height))
    if image.size[0] * image.size[1] > MAX_PIXELS:
        raise _too_large(width, height, MAX_PIXELS)
    image.load()
    return image


def identify(data: bytes) -> Image.Image:
    """Image.open(data, formats=FORMATS) without Pillow's own size warning (MAX_PIXELS is stricter).

    Only the allowed formats' plugins look at the bytes; the detected format is checked again.
    Raises BadImage for anything else (naming the format when it is a known one) and for a
    damaged header. The pixels are not decoded yet.
    """
    fp, prefix = io.BytesIO(data), data[:16]
    for fmt in FORMATS:
        if fmt not in Image.OPEN:
            continue  # WebP without Pillow's WebP support
        factory, accept = Image.OPEN[fmt]
        accepted = accept(prefix) if accept is not None else True
        if not accepted or isinstance(accepted, str):  # a str: Pillow's "support not installed"
            continue
        fp.seek(0)
        try:
            image = factory(fp, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # as Image.open: not this format after all
        except Image.DecompressionBombError:  # a GIF frame that grows the canvas, caught by Pillow itself
            raise _too_large_bomb() from None
        except Exception as exc:  # noqa: BLE001 - a damaged header: the plugin's own error
            raise BadImage(_reason(exc)) from None
        if image.format not in DETECTED:
            raise BadImage(f"{image.format} images are not accepted: send {FORMAT_NAMES}")
        return image
    what = next((name for magic, name in _OTHER_FORMATS if data.lstrip()[: len(magic)].startswith(magic)), None)
    if what:
        raise BadImage(f"{what} files are not accepted: send {FORMAT_NAMES}")
    raise BadImage(f"not an image (unknown or unsupported format): send {FORMAT_NAMES}")


_OTHER_FORMATS = (  # (leading bytes, name): only to say what a refused file is
    (b"%!PS", "PostScript (EPS)"), (b"\xc5\xd0\xd3\xc6", "PostScript (EPS)"), (b"%PDF", "PDF"),
    (b"8BPS", "Photoshop (PSD)"), (b"<svg", "SVG"), (b"<?xml", "XML or SVG"), (b"\x00\x00\x01\x00", "icon (ICO)"),
    (b"icns", "icon (ICNS)"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xffO\xffQ", "JPEG 2000"),
    (b"qoif", "QOI"), (b"DDS ", "DDS"), (b"\x00\x00\x00\x18ftypheic", "HEIC"), (b"\x00\x00\x00\x1cftypavif", "AVIF"),
)


def _too_large_bomb() -> BadImage:
    return BadImage(f"refused: over the limit of {MAX_PIXELS / 1e6:.1f} megapixels (decompression bomb)")


def _too_large(width: int, height: int, limit: int) -> BadImage:
    return BadImage(
        f"refused: {width}×{height} pixels is over the limit of {limit / 1e6:.1f} megapixels "
        "(decompression bomb); send a smaller image"
    )


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
        image = over_white(image)
    return image if image.mode == mode else image.convert(mode)


def over_white(image: Image.Image) -> Image.Image:
    """An image with alpha composited over white, as RGB (L for LA): out = a·color + (1 − a)·255.

    Only the output image is allocated (4 bytes a pixel for RGB, besides the input), where
    alpha_composite over an RGBA background took 12.
    """
    if image.mode not in ("RGBA", "LA"):
        image = image.convert("LA" if image.mode == "La" else "RGBA")
    base = image.mode[:-1]
    out = Image.new(base, image.size, (BACKGROUND,) * len(base))
    out.paste(image, (0, 0), image)  # the image's own alpha band is the mask
    return out


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
