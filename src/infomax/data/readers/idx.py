"""MNIST-style IDX files (gzip'd or raw): train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz] in one folder.

IDX header: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions,
then one big-endian uint32 per dimension; the values follow. Images: magic 0x00000803 (N×H×W),
labels: magic 0x00000801 (N).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from infomax.data.arrays import adapt_into
from infomax.data.dataset import Dataset, Split
from infomax.errors import InfomaxError

SPLITS = {"train": "train", "test": "t10k"}  # split -> file prefix
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def read(kind: str, path: Path, options: dict, *, progress: bool = True, store=None) -> Dataset:
    """Read idx, mnist or fashion-mnist from a folder of IDX files (options: size, mode, resize)
    into `store` (default: memory)."""
    if not path.is_dir():
        raise InfomaxError(
            f"{path} is not a folder; {kind} expects the folder holding "
            "train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-..."
        )
    splits = {}
    for split, prefix in SPLITS.items():
        images_file = find_file(path, f"{prefix}-images-idx3-ubyte")
        labels_file = find_file(path, f"{prefix}-labels-idx1-ubyte")
        images = read_idx(images_file, ndim=3)  # N×H×W
        labels = read_idx(labels_file, ndim=1).astype(np.int64)  # N
        if len(images) != len(labels):
            raise InfomaxError(f"{images_file} holds {len(images)} images but {labels_file} {len(labels)} labels")
        pixels = adapt_into(
            store,
            split,
            images[:, None],
            size=options.get("size"),
            mode=options.get("mode"),
            resize=options.get("resize", "shorter-crop"),
        )
        splits[split] = Split(pixels, labels, [f"{images_file.name}#{i}" for i in range(len(labels))])
    top = max(int(s.labels.max(initial=0)) for s in splits.values())
    class_names = FASHION_CLASSES if kind == "fashion-mnist" else [str(i) for i in range(top + 1)]
    if top >= len(class_names):
        raise InfomaxError(f"{path} has labels up to {top}, but {kind} has {len(class_names)} classes")
    shape = splits["train"].images.shape
    resolved = dict(
        options, size=int(shape[-1]) if shape[-1] == shape[-2] else None, mode="L" if shape[1] == 1 else "RGB"
    )
    return Dataset(kind, str(path), splits, class_names, options=resolved)


def find_file(folder: Path, stem: str) -> Path:
    """The file for `stem`, gzip'd or not, also in the 'train-images.idx3-ubyte' spelling."""
    spellings = {stem, stem.replace("-idx", ".idx")}
    for candidate in sorted(folder.iterdir()):
        name = candidate.name.lower()
        if name.endswith(".gz"):
            name = name[:-3]
        if name in spellings and candidate.is_file():
            return candidate
    raise InfomaxError(
        f"{folder} has no {stem} file (also looked for {stem}.gz); "
        "expected the four MNIST-style IDX files train-/t10k-images-idx3-ubyte, "
        "train-/t10k-labels-idx1-ubyte"
    )


def read_idx(path: Path, *, ndim: int) -> np.ndarray:
    """The uint8 array stored in an IDX file (gzip'd or raw)."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise InfomaxError(f"{path}: cannot read it ({exc}); re-download the file") from None
    if len(data) < 4 or data[:2] != b"\0\0":
        raise InfomaxError(f"{path} is not an IDX file (bad magic number); expected MNIST-style IDX data")
    dtype, dims = data[2], data[3]
    if dtype != 0x08:
        raise InfomaxError(f"{path}: IDX value type 0x{dtype:02x} is not supported (only unsigned bytes, 0x08)")
    if dims != ndim:
        raise InfomaxError(f"{path} has {dims} dimensions; expected {ndim} (magic 0x0000080{ndim})")
    header = 4 + 4 * dims
    if len(data) < header:
        raise InfomaxError(f"{path} is truncated (the header is incomplete)")
    shape = struct.unpack(f">{dims}I", data[4:header])
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header < count:
        raise InfomaxError(
            f"{path} is truncated: {len(data) - header} bytes of values, expected {count} for shape {shape}"
        )
    return np.frombuffer(data, np.uint8, count, header).reshape(shape)
