"""Writers for tiny files in the exact formats of the real releases, and for bad files."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def image_bytes(color=(255, 0, 0), size=(8, 8), fmt="PNG", mode="RGB", **save) -> bytes:
    """An image file of one solid color."""
    image = Image.new(mode, size, color)
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def cifar_pixels(n: int, seed: int) -> np.ndarray:
    """uint8 N×3072 rows (R plane, G plane, B plane of 32×32), like the release's `data`."""
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def _pickle(obj, *, py2_names: bool = False) -> bytes:
    data = pickle.dumps(obj, protocol=2)
    if py2_names:  # spell numpy's module as Python 2 era pickles do
        data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    return data


def write_cifar10(
    path: Path, *, per_batch: int = 4, n_test: int = 3, as_tar: bool = True, str_keys: bool = False
) -> dict:
    """cifar-10-python.tar.gz (or its extracted folder at `path`); returns what was written."""
    key = (lambda k: k) if str_keys else (lambda k: k.encode())
    files, written = {}, {"train": [], "test": []}
    for b in range(1, 6):
        data = cifar_pixels(per_batch, seed=b)
        labels = [(b + i) % 10 for i in range(per_batch)]
        files[f"data_batch_{b}"] = {
            key("batch_label"): b"training batch",
            key("labels"): labels,
            key("data"): data,
            key("filenames"): [b"x.png"] * per_batch,
        }
        written["train"].append((data, labels))
    data = cifar_pixels(n_test, seed=99)
    labels = [9 - i for i in range(n_test)]
    files["test_batch"] = {key("batch_label"): b"testing batch", key("labels"): labels, key("data"): data}
    written["test"].append((data, labels))
    files["batches.meta"] = {
        key("label_names"): [n.encode() for n in CIFAR10_NAMES],
        key("num_cases_per_batch"): per_batch,
        key("num_vis"): 3072,
    }
    _write_release(path, "cifar-10-batches-py", {n: _pickle(v, py2_names=True) for n, v in files.items()}, as_tar)
    return written


def write_cifar100(path: Path, *, n_train: int = 6, n_test: int = 2, as_tar: bool = True) -> dict:
    """cifar-100-python.tar.gz with fine and coarse labels; returns what was written."""
    files, written = {}, {}
    for split, n, seed in (("train", n_train, 1), ("test", n_test, 2)):
        data = cifar_pixels(n, seed)
        fine = [(7 * i + seed) % 100 for i in range(n)]
        coarse = [f % 20 for f in fine]
        files[split] = {b"data": data, b"fine_labels": fine, b"coarse_labels": coarse, b"batch_label": split.encode()}
        written[split] = (data, fine, coarse)
    files["meta"] = {
        b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
    }
    _write_release(path, "cifar-100-python", {n: _pickle(v) for n, v in files.items()}, as_tar)
    return written


def _write_release(path: Path, folder: str, files: dict[str, bytes], as_tar: bool) -> None:
    if not as_tar:
        (path / folder).mkdir(parents=True)
        for name, data in files.items():
            (path / folder / name).write_bytes(data)
        return
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file: magic 0x0000 08 <ndim>, big-endian uint32 dims, then the uint8 values."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx_set(folder: Path, *, n_train: int = 5, n_test: int = 3, size: int = 28, gz: bool = True) -> dict:
    """The four MNIST-style files; returns {split: (images N×H×W, labels)}."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, (n, size, size), dtype=np.uint8)
        labels = (np.arange(n) * 3 % 10).astype(np.uint8)
        for kind, array in (("images-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}" + (".gz" if gz else "")
            (folder / name).write_bytes(gzip.compress(data) if gz else data)
        out[split] = (images, labels)
    return out


TINY_COLORS = [(250, 0, 0), (0, 250, 0), (0, 0, 250)]  # one solid color per class (sorted wnid order)
TINY_WNIDS = ["n02", "n01", "n03"]  # deliberately not sorted in wnids.txt


def write_tiny_imagenet(path: Path, *, per_class: int = 2, as_zip: bool = True, side: int = 64) -> dict:
    """tiny-imagenet-200.zip (or folder) with 3 classes of side×side JPEGs; val images take the class colors."""
    root = "tiny-imagenet-200/"
    sorted_ids = sorted(TINY_WNIDS)
    files = {
        root + "wnids.txt": "\n".join(TINY_WNIDS) + "\n",
        root + "words.txt": "n00\tentity\nn01\tgoldfish, Carassius auratus\nn02\ttabby, tabby cat\nn03\tbullfrog\n",
    }
    for wnid in TINY_WNIDS:
        color = TINY_COLORS[sorted_ids.index(wnid)]
        for i in range(per_class):
            files[f"{root}train/{wnid}/images/{wnid}_{i}.JPEG"] = image_bytes(color, (side, side), "JPEG", quality=95)
        files[f"{root}train/{wnid}/{wnid}_boxes.txt"] = "".join(
            f"{wnid}_{i}.JPEG\t0\t0\t63\t63\n" for i in range(per_class)
        )
    val_labels = ["n03", "n01", "n02", "n01"]
    lines = []
    for i, wnid in enumerate(val_labels):
        files[f"{root}val/images/val_{i}.JPEG"] = image_bytes(
            TINY_COLORS[sorted_ids.index(wnid)], (side, side), "JPEG", quality=95
        )
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63")
    files[root + "val/val_annotations.txt"] = "\n".join(lines) + "\n"
    files[root + "test/images/test_0.JPEG"] = image_bytes((9, 9, 9), (side, side), "JPEG")
    write_tree(path, files, as_zip=as_zip)
    return {"val_labels": [sorted_ids.index(w) for w in val_labels]}


def write_tree(path: Path, files: dict[str, bytes | str], *, as_zip: bool) -> None:
    """Write relative-path → content as a folder or a zip."""
    if as_zip:
        with zipfile.ZipFile(path, "w") as z:
            for name, data in files.items():
                z.writestr(name, data)
        return
    for name, data in files.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width×height pixels (a decompression bomb's header) with no real data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def bad_files() -> dict[str, bytes]:
    """A corpus of files that must be skipped, keyed by name (all with image extensions)."""
    jpeg = image_bytes((10, 20, 30), (32, 32), "JPEG")
    return {
        "empty.jpg": b"",
        "text.png": b"this is not an image at all\n",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "garbage.gif": b"GIF89a" + bytes(range(256)) * 2,
        "bomb.png": png_header(30000, 30000),
    }
