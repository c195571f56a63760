"""Hand-made photos for the picture tests: 300×200 (and one 200×300) PNG and JPEG files with
detail finer than a small training size, in two class folders with a classes.txt."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from infomax.data.pictures import RESAMPLE

CLASSES_TXT = "# folder<TAB>readable name\ncats\tdomestic cat\ndogs\tdog\n"
FILES = {  # name -> (width, height, format)
    "cats/a.png": (300, 200, "PNG"),
    "cats/b.jpg": (300, 200, "JPEG"),
    "dogs/c.png": (200, 300, "PNG"),
    "dogs/d.png": (300, 200, "PNG"),
}


def photo(width: int, height: int, seed: int) -> np.ndarray:
    """uint8 H×W×3 in 30..220: smooth colour ramps plus stripes about 6 px apart (lost at 32 px)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    rng = np.random.default_rng(seed)
    out = np.empty((height, width, 3))
    for c in range(3):
        a, b = rng.uniform(0.02, 0.06, size=2)
        ramp = 125 + 50 * np.sin(x * a + c) * np.cos(y * b)
        stripes = 40 * np.sin(2 * np.pi * (x * rng.uniform(0.12, 0.2) + y * rng.uniform(0.05, 0.15)))
        out[:, :, c] = ramp + stripes
    return np.clip(np.round(out), 30, 220).astype(np.uint8)


def encoded(pixels: np.ndarray, fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def write_photos(root: Path, classes_txt: str | None = CLASSES_TXT) -> dict[str, bytes]:
    """The photos under root (and classes.txt); returns name -> file bytes."""
    files = {}
    for i, (name, (w, h, fmt)) in enumerate(FILES.items()):
        files[name] = encoded(photo(w, h, i), fmt)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(files[name])
    if classes_txt is not None:
        (root / "classes.txt").write_text(classes_txt, encoding="utf-8")
    return files


def reference(data: bytes, side: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """float64 H×W×3: the file decoded by PIL and resized in float (mode F, per channel) so its
    longer side is `side`, aspect ratio kept (or to size=(w, h))."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    w, h = image.size
    scale = min(1.0, side / max(w, h))
    target = size or (max(1, round(w * scale)), max(1, round(h * scale)))
    pixels = np.asarray(image, dtype=np.float32)
    bands = [np.asarray(Image.fromarray(pixels[:, :, c], "F").resize(target, RESAMPLE)) for c in range(3)]
    return np.clip(np.stack(bands, axis=2).astype(np.float64), 0, 255)


def decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
