"""The decoded-array cache: one folder per decoded data set, written atomically, verified on load.

<root>/decoded/<kind>-<key>/
    index.json            kind, path, class names (and ids), options, skipped files, and per split:
                          shape, ids, file names and their byte lengths
    <split>.images.npy    uint8 N×C×H×W (memory-mapped on load)
    <split>.labels.npy    int64 N (labelled splits only)
    skipped.txt           files that did not decode, one per line with the reason
The key hashes the source path, its size and modification time (a listing for folders) and
the decoding options. The folder is built under a temporary name (`begin`: readers decode
straight into its .npy files through a Store) and renamed into place (`commit`), so an
interrupted run leaves no half-written entry; a damaged entry fails verification and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from infomax.data.dataset import Dataset, Split

FORMAT = 1
INDEX = "index.json"
SKIPPED = "skipped.txt"
STALE_S = 3600  # temporary folders older than this belong to runs that were killed


class CacheDamaged(Exception):
    """A cache entry exists but does not match its index."""


def entry_path(root: Path, kind: str, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps({"format": FORMAT, **key}, sort_keys=True, default=str).encode())
    return Path(root) / "decoded" / f"{kind}-{digest.hexdigest()[:16]}"


def read_entry(entry: Path) -> Dataset | None:
    """The cached data set with memory-mapped images; None when absent; CacheDamaged when damaged."""
    index_file = entry / INDEX
    if not index_file.is_file():
        return None
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
        if index.get("format") != FORMAT:
            raise CacheDamaged(f"format {index.get('format')}, expected {FORMAT}")
        splits = {}
        for name, info in index["splits"].items():
            images = _open_npy(entry / info["images"], info["bytes"][0], tuple(info["shape"]), np.uint8)
            labels = None
            if info.get("labels"):
                labels = _open_npy(entry / info["labels"], info["bytes"][1], (info["shape"][0],), np.int64)
            if len(info["ids"]) != images.shape[0]:
                raise CacheDamaged(f"{len(info['ids'])} ids for {images.shape[0]} images in split {name}")
            splits[name] = Split(images, labels, list(info["ids"]))
    except CacheDamaged:
        raise
    except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise CacheDamaged(str(exc) or type(exc).__name__) from None
    return Dataset(
        index["kind"],
        index["path"],
        splits,
        index["class_names"],
        options=index["options"],
        skipped=[tuple(s) for s in index["skipped"]],
        cache_path=str(entry),
        from_cache=True,
        class_ids=index.get("class_ids"),
    )


def _open_npy(path: Path, nbytes: int, shape: tuple, dtype) -> np.ndarray:
    size = path.stat().st_size
    if size != nbytes:
        raise CacheDamaged(f"{path.name} has {size} bytes, expected {nbytes}")
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.shape != shape or array.dtype != dtype:
        raise CacheDamaged(f"{path.name} holds {array.dtype} {array.shape}, expected {np.dtype(dtype)} {shape}")
    return array


def write_entry(entry: Path, dataset: Dataset) -> Dataset:
    """Store `dataset` (arrays in memory) at `entry` atomically and return it memory-mapped from there."""
    tmp = begin(entry)
    try:
        return commit(tmp, entry, dataset)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def begin(entry: Path) -> Path:
    """A new temporary folder beside `entry` to build it in (a reader's Store writes images there)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(entry.parent)
    tmp = entry.parent / f".{entry.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return tmp


def commit(tmp: Path, entry: Path, dataset: Dataset) -> Dataset:
    """Finish the entry built in `tmp` and rename it into place; the data set memory-mapped from there.

    Split images that are already `<split>.images.npy` in `tmp` (written by a Store) stay as they
    are; arrays in memory are saved. The caller removes `tmp` when this raises.
    """
    index = {
        "format": FORMAT,
        "kind": dataset.kind,
        "path": dataset.path,
        "class_names": dataset.class_names,
        "class_ids": dataset.class_ids,
        "options": dataset.options,
        "skipped": [list(s) for s in dataset.skipped],
        "splits": {},
    }
    for name, split in dataset.splits.items():
        target = tmp / f"{name}.images.npy"
        if _written_to(split.images, target):
            files = [(target.name, target.stat().st_size)]
        else:
            files = [_save_npy(target, np.asarray(split.images, np.uint8))]
        if split.labels is not None:
            files.append(_save_npy(tmp / f"{name}.labels.npy", np.asarray(split.labels, np.int64)))
        index["splits"][name] = {
            "shape": list(split.images.shape),
            "ids": list(split.ids),
            "images": files[0][0],
            "labels": files[1][0] if len(files) > 1 else None,
            "bytes": [size for _, size in files],
        }
    if dataset.skipped:
        lines = "".join(f"{name}\t{reason}\n" for name, reason in dataset.skipped)
        (tmp / SKIPPED).write_text(lines, encoding="utf-8", errors="replace")
    (tmp / INDEX).write_text(json.dumps(index), encoding="utf-8")
    if entry.exists():
        shutil.rmtree(entry)  # a damaged older copy
    try:
        os.rename(tmp, entry)
    except OSError:
        if not (entry / INDEX).is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first: use its copy
    return read_entry(entry)


def _written_to(images: np.ndarray, target: Path) -> bool:
    """True when `images` is the whole memory map of the file `target`."""
    filename = getattr(images, "filename", None)  # np.memmap's file
    if filename is None or not target.is_file() or Path(filename).resolve() != target.resolve():
        return False
    whole = np.load(target, mmap_mode="r", allow_pickle=False)
    return images.shape == whole.shape


def _save_npy(path: Path, array: np.ndarray) -> tuple[str, int]:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)
    return path.name, path.stat().st_size


def _remove_stale(folder: Path) -> None:
    """Delete temporary folders left behind by killed runs."""
    now = time.time()
    for tmp in folder.glob(".*.tmp-*"):
        try:
            if now - tmp.stat().st_mtime > STALE_S:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass
