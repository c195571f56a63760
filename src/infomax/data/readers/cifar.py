"""CIFAR-10 and CIFAR-100, python release: read from the .tar.gz without extracting, or its folder.

cifar-10-batches-py/  data_batch_1..5, test_batch, batches.meta (label_names)
cifar-100-python/     train, test, meta (fine_label_names, coarse_label_names)
Each batch is a pickled dict: data (uint8 N×3072, channel-major 32×32 planes), labels.
The pickles are read with an unpickler that only builds numpy arrays and plain values.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from infomax.data.arrays import adapt_into
from infomax.data.dataset import Dataset, Split
from infomax.errors import InfomaxError

LAYOUTS = {
    # kind: (archive, folder inside it, {split: [batch files]}, meta file)
    "cifar10": (
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        "batches.meta",
    ),
    "cifar100": ("cifar-100-python.tar.gz", "cifar-100-python", {"train": ["train"], "test": ["test"]}, "meta"),
}


def read(kind: str, path: Path, options: dict, *, progress: bool = True, store=None) -> Dataset:
    """Read cifar10 or cifar100 (options: labels=fine|coarse, size, mode, resize) into `store`
    (default: memory)."""
    archive, folder, batches, meta_name = LAYOUTS[kind]
    wanted = [meta_name] + [b for files in batches.values() for b in files]
    files = _read_files(path, archive, folder, wanted, kind)
    label_key = "labels" if kind == "cifar10" else f"{options.get('labels', 'fine')}_labels"
    names_key = "label_names" if kind == "cifar10" else f"{options.get('labels', 'fine')}_label_names"
    meta = _unpickle(files[meta_name], meta_name, path)
    class_names = [_text(n) for n in _field(meta, names_key, meta_name, path)]
    splits = {}
    for split, batch_names in batches.items():
        images, labels, ids = [], [], []
        for name in batch_names:
            batch = _unpickle(files[name], name, path)
            pixels, targets = _batch_arrays(batch, label_key, name, path, len(class_names))
            images.append(pixels)
            labels.append(targets)
            ids += [f"{name}#{i}" for i in range(len(targets))]
        pixels = adapt_into(
            store,
            split,
            np.concatenate(images),
            size=options.get("size"),
            mode=options.get("mode"),
            resize=options.get("resize", "shorter-crop"),
        )
        splits[split] = Split(pixels, np.concatenate(labels), ids)
    shape = splits["train"].images.shape
    resolved = dict(options, size=int(shape[-1]), mode="L" if shape[1] == 1 else "RGB")
    if kind == "cifar100":
        resolved.setdefault("labels", "fine")
    return Dataset(kind, str(path), splits, class_names, options=resolved)


def _read_files(path: Path, archive: str, folder: str, wanted: list[str], kind: str) -> dict[str, bytes]:
    """The bytes of each wanted file, from the archive or the (extracted) folder."""
    found: dict[str, bytes] = {}
    if path.is_dir():
        base = path / folder if (path / folder).is_dir() else path
        for name in wanted:
            if (base / name).is_file():
                found[name] = (base / name).read_bytes()
    else:
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:  # one pass: a .tar.gz cannot seek backwards cheaply
                    name = member.name.rsplit("/", 1)[-1]
                    if member.isfile() and name in wanted and name not in found:
                        found[name] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InfomaxError(
                f"{path} is not a readable {kind} archive ({exc}); expected the python release "
                f"{archive} or its extracted folder {folder}/"
            ) from None
    missing = [name for name in wanted if name not in found]
    if missing:
        raise InfomaxError(
            f"{path} does not look like the {kind} python release: missing {', '.join(missing)}; "
            f"expected {folder}/{{{', '.join(wanted)}}} (the .tar.gz or its extracted folder)"
        )
    return found


def _batch_arrays(batch: dict, label_key: str, name: str, path: Path, num_classes: int):
    """(uint8 N×3×32×32 pixels, int64 N labels) of one batch, checked."""
    data = np.asarray(_field(batch, "data", name, path))
    labels = np.asarray(_field(batch, label_key, name, path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise InfomaxError(
            f"{path}: {name} holds data of shape {data.shape} ({data.dtype}) and {len(labels)} labels; "
            "expected uint8 N×3072 and N labels"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise InfomaxError(f"{path}: {name} has labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels  # rows hold the R, G, B planes in order


def _field(d: dict, key: str, name: str, path: Path):
    """d[key], accepting the str or bytes keys of Python 2 and 3 pickles."""
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise InfomaxError(f"{path}: {name} has no '{key}' entry; is this the {name} file of a CIFAR python release?")


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _unpickle(data: bytes, name: str, path: Path) -> dict:
    try:
        result = _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a CIFAR batch
        raise InfomaxError(f"{path}: cannot read {name} as a CIFAR batch ({exc})") from None
    if not isinstance(result, dict):
        raise InfomaxError(f"{path}: {name} is not a CIFAR batch (a {type(result).__name__}, not a dict)")
    return result


def _allowed() -> dict[tuple[str, str], object]:
    """The only callables a CIFAR pickle needs: numpy's array rebuilders and bytes helpers."""
    import codecs

    reconstruct = np.ndarray((0,), np.uint8).__reduce__()[0]
    frombuffer = np.zeros(1).__reduce_ex__(5)[0]
    allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,
        ("builtins", "bytearray"): bytearray,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        allowed[(module, "_frombuffer")] = frombuffer
    return allowed


class _SafeUnpickler(pickle.Unpickler):
    """Builds numpy arrays, dicts, lists, strings and numbers; refuses anything else."""

    _ALLOWED = _allowed()

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}") from None
