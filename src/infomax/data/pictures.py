"""Pictures of a data set's images for people to look at (the search page, grids, maps).

A data set whose ids name files (folder:, a zip through folder:, tiny-imagenet:) is shown from
its source files: each file is decoded at up to DISPLAY_SIDE pixels on its longer side, aspect
ratio kept (a JPEG is decoded reduced with `draft`), never enlarged, and encoded once as JPEG.
Those encodings are kept in a bounded in-memory LRU and in a folder on disk
(`cache_home()/pictures`, one file per picture, written atomically), keyed by the source file's
identity: path, size and modification time, or a zip member's name, size and CRC. A changed file
gets a new picture.

Data without source files (cifar10, cifar100, digits, idx, mnist, fashion-mnist, arrays in memory)
keep their decoded pixels, enlarged by a whole factor with nearest-neighbour repetition (PNG).
So does an image whose source file is gone or unreadable.

Only images of the data set are ever opened, by row: the names come from the data set's own
listing, never from a client. Source files go through infomax.data.decode's limits: its format
allowlist, its file size limit and its pixel limits.
"""

from __future__ import annotations

import hashlib
import io
import sys
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from infomax.atomic import atomic_write
from infomax.data.decode import ORIENTATION, BadImage, open_limited, to_mode

DISPLAY_SIDE = 256  # longer side of a picture made from a source file
MEMORY_BYTES = 64 * 1024 * 1024  # encoded pictures kept in memory (a 256 px JPEG is about 15 KB)
MAX_DECODES = 4  # source files decoded at once
JPEG_QUALITY = 90
RESAMPLE = Image.Resampling.LANCZOS
FORMAT = 1  # part of every disk cache key: bump when pictures are made differently
SOURCE_KINDS = ("folder", "tiny-imagenet")  # kinds whose ids are files of a folder or zip


@dataclass(frozen=True)
class Picture:
    data: bytes  # the encoded image
    media_type: str  # image/jpeg (from the source file) or image/png (decoded pixels)
    from_source: bool


def fitted(width: int, height: int, side: int) -> tuple[int, int]:
    """(w, h) with the longer side at most `side` and the aspect ratio kept (never enlarged)."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def source_picture(data: bytes, side: int = DISPLAY_SIDE) -> Image.Image:
    """An image file's bytes -> RGB PIL image at most side×side, aspect ratio kept.

    The format allowlist and pixel limits of infomax.data.decode apply; BadImage otherwise.
    """
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        stored = {}  # a JPEG's stored size: a reduced-size decode changes image.size

        def needed(w: int, h: int) -> tuple[int, int]:
            stored["size"] = (w, h)
            return fitted(w, h, side)

        image = open_limited(data, "RGB", needed)
        width, height = stored.get("size", image.size)
        if "exif" in image.info and image.getexif().get(ORIENTATION, 1) in (5, 6, 7, 8):
            width, height = height, width  # stored sideways
        if "exif" in image.info and image.getexif().get(ORIENTATION, 1) != 1:
            image = ImageOps.exif_transpose(image)
        image = to_mode(image, "RGB")
        target = fitted(width, height, side)
        return image if image.size == target else image.resize(target, RESAMPLE)
    except BadImage:
        raise
    except MemoryError:
        raise BadImage("not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise many types on malformed input
        raise BadImage(f"damaged image ({str(exc).strip() or type(exc).__name__})") from None


def pixel_picture(image: np.ndarray, side: int = DISPLAY_SIDE) -> np.ndarray:
    """uint8 C×H×W -> H'×W'×3 (C = 1 or 3), enlarged by a whole factor (nearest) up to `side`."""
    pixels = np.asarray(image, dtype=np.uint8).transpose(1, 2, 0)
    pixels = np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3]
    factor = max(1, side // max(pixels.shape[:2]))
    return pixels.repeat(factor, axis=0).repeat(factor, axis=1)


def encode(pixels: np.ndarray | Image.Image, fmt: str) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    out = io.BytesIO()
    if fmt == "JPEG":
        image.save(out, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        image.save(out, format="PNG")
    return out.getvalue()


def default_cache_dir() -> Path:
    from infomax.data import cache_home

    return cache_home() / "pictures"


class Pictures:
    """The pictures of a data set's images, addressed by data row (its splits one after another).

    Safe to call from many threads. `decodes` counts source files decoded, `disk_hits` pictures
    read from the disk cache.
    """

    def __init__(self, parts, ids=None, tree=None, *, side: int = DISPLAY_SIDE, cache_dir: str | Path | None = None,
                 memory_bytes: int = MEMORY_BYTES, max_decodes: int = MAX_DECODES):
        """parts: uint8 N×C×H×W image arrays, one per split; ids: the file names of their images in
        `tree` (a FolderTree or ZipTree), one list per split, or None to show the decoded pixels;
        cache_dir: the disk cache (None: no disk cache)."""
        self.parts = list(parts)
        self.ids = [list(i) for i in ids] if ids is not None and tree is not None else None
        self.tree = tree if self.ids is not None else None
        self.starts = np.cumsum([0] + [len(p) for p in self.parts]).tolist()
        self.side, self.memory_bytes = side, memory_bytes
        self.cache_dir = Path(cache_dir) / str(side) if cache_dir is not None else None
        self._memory: OrderedDict[int, Picture] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self._decoding = threading.BoundedSemaphore(max_decodes)
        self.decodes = self.disk_hits = 0

    @classmethod
    def for_dataset(cls, dataset, *, cache_dir: str | Path | None | bool = True, **kw) -> "Pictures":
        """Pictures from the source files when the data set has them (cache_dir True: the default folder)."""
        parts = [s.images for s in dataset.splits.values()]
        tree = None
        if dataset.kind in SOURCE_KINDS and dataset.path:
            from infomax.data.sources import cached_tree
            from infomax.errors import InfomaxError

            try:
                tree = cached_tree(dataset.path)
            except (InfomaxError, OSError) as exc:
                print(f"infomax: showing decoded pixels: cannot open {dataset.path} ({exc})", file=sys.stderr)
        cache = default_cache_dir() if cache_dir is True else (cache_dir or None)
        ids = [s.ids for s in dataset.splits.values()] if tree is not None else None
        return cls(parts, ids, tree, cache_dir=cache if tree is not None else None, **kw)

    @property
    def from_sources(self) -> bool:
        return self.tree is not None

    def __len__(self) -> int:
        return self.starts[-1]

    def image(self, row: int) -> np.ndarray:
        """The decoded (training-size) pixels of a row: uint8 C×H×W."""
        if not 0 <= row < len(self):
            raise IndexError(f"row {row} is outside the data (0..{len(self) - 1})")
        part = bisect_right(self.starts, row) - 1
        return np.asarray(self.parts[part][row - self.starts[part]])

    def picture(self, row: int) -> Picture:
        """The encoded picture of a row (memory, then disk, then the source file, then the pixels)."""
        with self._lock:
            hit = self._memory.get(row)
            if hit is not None:
                self._memory.move_to_end(row)
                return hit
        picture = self._make(row)
        with self._lock:
            if row not in self._memory and len(picture.data) <= self.memory_bytes:
                self._memory[row] = picture
                self._held += len(picture.data)
                while self._held > self.memory_bytes:
                    self._held -= len(self._memory.popitem(last=False)[1].data)
        return picture

    def display(self, row: int, box: int) -> np.ndarray:
        """uint8 H×W×3 of a row to draw within box×box: the source picture fitted into the box, or
        the decoded pixels enlarged by a whole factor (never past the box unless they are larger)."""
        picture = self.picture(row)
        if picture.from_source:
            try:
                image = Image.open(io.BytesIO(picture.data), formats=["JPEG"]).convert("RGB")
                target = fitted(*image.size, box)
                return np.asarray(image if image.size == target else image.resize(target, RESAMPLE))
            except Exception:  # noqa: BLE001 - a damaged cache file: draw the pixels instead
                pass
        return pixel_picture(self.image(row), box)

    def _make(self, row: int) -> Picture:
        image = self.image(row)  # raises IndexError for a row outside the data
        if self.tree is not None:
            part = bisect_right(self.starts, row) - 1
            name = self.ids[part][row - self.starts[part]]
            made = self._from_source(name)
            if made is not None:
                return made
        return Picture(encode(pixel_picture(image, self.side), "PNG"), "image/png", False)

    def _from_source(self, name: str) -> Picture | None:
        if name.startswith("/") or ".." in name.split("/"):
            return None  # not a name of the data set's own listing
        try:
            identity = self.tree.identity(name)
        except (OSError, KeyError):
            return None
        key = hashlib.sha256(f"{FORMAT}\0{self.side}\0{identity}".encode("utf-8", "surrogateescape")).hexdigest()
        path = self.cache_dir / key[:2] / f"{key}.jpg" if self.cache_dir is not None else None
        if path is not None:
            try:
                data = path.read_bytes()
                with self._lock:
                    self.disk_hits += 1
                return Picture(data, "image/jpeg", True)
            except OSError:
                pass
        try:
            with self._decoding:
                with self._lock:
                    self.decodes += 1
                data = encode(source_picture(self.tree.read(name), self.side), "JPEG")
        except (OSError, KeyError, BadImage):
            return None
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(path, data)
            except OSError as exc:
                print(f"infomax: cannot write the picture cache {self.cache_dir} ({exc.strerror or exc}); "
                      "keeping pictures in memory only", file=sys.stderr)
                self.cache_dir = None
        return Picture(data, "image/jpeg", True)
