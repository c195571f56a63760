"""Embeddings stored as parts: the layout embedding-reader, autofaiss and clip-retrieval read.

EMB_DIR/
  embeddings/part-00000.npy    float32 (or float16) rows × D, the μ features of rows 0..P-1
  metadata/part-00000.parquet  the same rows: id, split, label, label_name
  fc/part-00000.npy, conv/...  optional extra features of the same rows
  embed.json                   how they were made, and the parts with their row counts

Part k holds rows k·P .. (k+1)·P − 1 of the whole (P = the part size; the last part is shorter).
A part is written metadata first, extra features next, vectors last, each file atomically: a part
whose embeddings/part-NNNNN.npy exists is complete (`finished_parts`).

`ShardedArray` reads the parts as one N×D float32 matrix without loading them: each part is a
memory map, and a row, a slice or an index array reads only the parts that hold those rows.
An older folder with one embeddings.npy + metadata.parquet reads as a single part.
"""

from __future__ import annotations

import os

import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from infomax.atomic import atomic_write
from infomax.errors import InfomaxError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

VECTORS_DIR, METADATA_DIR = "embeddings", "metadata"
LEGACY_VECTORS, LEGACY_METADATA = "embeddings.npy", "metadata.parquet"  # the single-file layout
STORAGE_DTYPES = ("float32", "float16")
_PART = re.compile(r"^part-(\d{5,})\.npy$")


def part_name(k: int) -> str:
    return f"part-{k:05d}"


def vectors_path(folder: str | Path, k: int, name: str = VECTORS_DIR) -> Path:
    """The npy file of part k of the vectors (name="embeddings") or of an extra feature ("fc", "conv")."""
    return Path(folder) / name / f"{part_name(k)}.npy"


def metadata_path(folder: str | Path, k: int) -> Path:
    return Path(folder) / METADATA_DIR / f"{part_name(k)}.parquet"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append ".npy" to a bare temp name
        np.save(f, array)


def write_part(folder: str | Path, k: int, vectors: np.ndarray, metadata: pd.DataFrame,
               extra: dict[str, np.ndarray] | None = None) -> Path:
    """Write part k: metadata, then the extra features, then the vectors (rows × D, stored in
    their own dtype, float32 or float16), each atomically. Returns the vectors' path."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.dtype.name not in STORAGE_DTYPES:
        raise InfomaxError(f"part {k}: vectors must be a 2-D float32 or float16 array, got "
                           f"{vectors.dtype} of shape {vectors.shape}")
    extra = extra or {}
    for name, rows in [("metadata", len(metadata))] + [(n, len(a)) for n, a in extra.items()]:
        if rows != len(vectors):
            raise InfomaxError(f"part {k}: {len(vectors)} vectors but {rows} {name} rows; they must describe "
                               "the same images")
    folder = Path(folder)
    for sub in (METADATA_DIR, *extra, VECTORS_DIR):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    atomic_write(metadata_path(folder, k), lambda p: metadata.reset_index(drop=True).to_parquet(p, index=False))
    for name, array in extra.items():
        atomic_write(vectors_path(folder, k, name), lambda p, a=array: _save_npy(p, np.asarray(a, dtype=vectors.dtype)))
    return atomic_write(vectors_path(folder, k), lambda p: _save_npy(p, vectors))


def finished_parts(folder: str | Path) -> list[int]:
    """Numbers of the complete parts (those whose vectors file exists), sorted."""
    d = Path(folder) / VECTORS_DIR
    if not d.is_dir():
        return []
    return sorted(int(m.group(1)) for p in d.iterdir() if (m := _PART.match(p.name)))


def metadata_files(folder: str | Path) -> list[Path]:
    """The metadata file of each part in row order (one file for the single-file layout)."""
    folder = Path(folder)
    parts = finished_parts(folder)
    if parts:
        return [metadata_path(folder, k) for k in parts]
    if (folder / LEGACY_METADATA).is_file():
        return [folder / LEGACY_METADATA]
    raise InfomaxError(f"{folder} holds no embeddings metadata; create it with `infomax embed --out {folder}`")


def _read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except (ValueError, OSError) as exc:
        raise InfomaxError(f"{path} is damaged ({exc}); re-run `infomax embed` into that folder") from exc


def iter_metadata(folder: str | Path) -> Iterator[tuple[int, pd.DataFrame]]:
    """(start row, DataFrame) of each part in order, one part in memory at a time."""
    import pandas as pd

    start = 0
    for path in metadata_files(folder):
        frame = _read_parquet(path)
        frame.index = pd.RangeIndex(start, start + len(frame))  # the rows' numbers in the whole
        yield start, frame
        start += len(frame)


def part_rows(folder: str | Path) -> np.ndarray:
    """int64 row count of each part, from the parquet footers (no rows are read)."""
    import pyarrow.parquet as pq

    return np.array([pq.ParquetFile(p).metadata.num_rows for p in metadata_files(folder)], dtype=np.int64)


def read_metadata(folder: str | Path, rows=None) -> pd.DataFrame:
    """All metadata rows (index 0..N-1), or only `rows` (int array, in that order, index 0..len-1),
    reading only the parquet files of the parts that hold them."""
    import pandas as pd

    files = metadata_files(folder)
    if rows is None:
        frames = [_read_parquet(p) for p in files]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    rows = np.asarray(rows, dtype=np.int64).ravel()
    counts = part_rows(folder)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)  # parts+1
    total = int(offsets[-1])
    if len(rows) and (rows.min() < -total or rows.max() >= total):
        raise InfomaxError(f"metadata rows must be in 0..{total - 1}; got {rows.min()}..{rows.max()}")
    rows = np.where(rows < 0, rows + total, rows)
    part_of = np.searchsorted(offsets, rows, side="right") - 1  # rows
    pieces, order = [], []
    for p in np.unique(part_of):
        at = np.flatnonzero(part_of == p)
        pieces.append(_read_parquet(files[p]).iloc[rows[at] - offsets[p]])
        order.append(at)
    if not pieces:
        return _read_parquet(files[0]).iloc[:0].reset_index(drop=True)
    out = pd.concat(pieces, ignore_index=True)
    return out.iloc[np.argsort(np.concatenate(order), kind="stable")].reset_index(drop=True)


class ShardedArray:
    """N×D read-only float32 view over parts (2-D arrays, usually npy memory maps) stacked by rows.

    x[i] -> float32 D; x[a:b] -> float32 (b−a)×D; x[idx] (int or bool array) -> float32 rows in
    the order given, reading only the parts that hold them; x[rows, cols] indexes the rows first.
    """

    def __init__(self, parts: list[np.ndarray], dim: int | None = None):
        for p in parts:
            if p.ndim != 2:
                raise InfomaxError(f"embedding parts must be 2-D (rows × D), got shape {p.shape}")
        dims = {int(p.shape[1]) for p in parts if len(p)} or {int(p.shape[1]) for p in parts}
        if len(dims) > 1:
            raise InfomaxError(f"embedding parts disagree on their width ({sorted(dims)}); re-run `infomax embed`")
        self.parts = list(parts)
        counts = np.array([len(p) for p in parts], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)  # start row of each part
        self._ends = self.offsets + counts
        self._n = int(counts.sum())
        self._dim = dims.pop() if dims else int(dim or 0)

    @classmethod
    def open(cls, paths: list[str | Path], dim: int | None = None) -> "ShardedArray":
        """Memory-map each npy file (read-only) as one part."""
        try:
            return cls([np.load(p, mmap_mode="r") for p in paths], dim)
        except (ValueError, OSError) as exc:
            raise InfomaxError(f"an embeddings part is damaged ({exc}); re-run `infomax embed`") from exc

    @property
    def shape(self) -> tuple[int, int]:
        return (self._n, self._dim)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)  # rows come back float32 whatever the parts store

    @property
    def storage_dtype(self) -> np.dtype:
        return self.parts[0].dtype if self.parts else np.dtype(np.float32)

    ndim = 2

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ShardedArray({self._n}×{self._dim}, {len(self.parts)} parts, stored {self.storage_dtype})"

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[0 : self._n]
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            rows = self[key[0]]
            return rows[key[1:]] if rows.ndim == 1 else rows[(slice(None), *key[1:])]
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self._n if key < 0 else 0)
            if not 0 <= i < self._n:
                raise IndexError(f"row {int(key)} is out of range for {self._n} rows")
            p = int(np.searchsorted(self.offsets, i, side="right")) - 1
            return np.array(self.parts[p][i - self.offsets[p]], dtype=np.float32)
        if isinstance(key, slice):
            start, stop, step = key.indices(self._n)
            if step != 1:
                return self[np.arange(start, stop, step)]
            return self._range(start, max(start, stop))
        return self._take(key)

    def _range(self, start: int, stop: int) -> np.ndarray:
        out = np.empty((stop - start, self._dim), dtype=np.float32)
        for p in np.flatnonzero((self.offsets < stop) & (self._ends > start)):
            a, b = max(start, self.offsets[p]), min(stop, self._ends[p])
            out[a - start : b - start] = self.parts[p][a - self.offsets[p] : b - self.offsets[p]]
        return out

    def _take(self, key) -> np.ndarray:
        idx = np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (self._n,):
                raise IndexError(f"a boolean mask must have {self._n} entries, got shape {idx.shape}")
            idx = np.flatnonzero(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise IndexError(f"rows must be integers, got {idx.dtype}")
        flat = idx.astype(np.int64, copy=False).ravel()
        if flat.size and (flat.min() < -self._n or flat.max() >= self._n):
            raise IndexError(f"rows must be in -{self._n}..{self._n - 1}")
        flat = np.where(flat < 0, flat + self._n, flat)
        out = np.empty((len(flat), self._dim), dtype=np.float32)
        part_of = np.searchsorted(self.offsets, flat, side="right") - 1  # the part holding each row
        order = np.argsort(part_of, kind="stable")
        bounds = np.searchsorted(part_of[order], np.arange(len(self.parts) + 1))
        for p in range(len(self.parts)):
            at = order[bounds[p] : bounds[p + 1]]
            if len(at):
                out[at] = self.parts[p][flat[at] - self.offsets[p]]
        return out.reshape(*idx.shape, self._dim)

    def read(self, rows) -> np.ndarray:
        """float32 rows (an int array, any order) read from the part files with pread, not through
        the memory mapping: no page of the file becomes part of this process's resident memory,
        so a long-running search that reads a few rows per query keeps a flat RSS (reading through
        a mapping maps ~64 KB around every row read). Parts held in memory are indexed as usual."""
        flat = np.asarray(rows, dtype=np.int64).ravel()
        if flat.size and (flat.min() < 0 or flat.max() >= self._n):
            raise IndexError(f"rows must be in 0..{self._n - 1}")
        stored = np.empty((len(flat), self._dim), dtype=self.storage_dtype)
        size = self._dim * stored.itemsize
        buffer = memoryview(stored).cast("B")
        part_of = np.searchsorted(self.offsets, flat, side="right") - 1
        for i, (p, row) in enumerate(zip(part_of.tolist(), flat.tolist())):
            local = row - int(self.offsets[p])
            fd = self._fd(p)
            if fd is None:
                stored[i] = self.parts[p][local]
            elif os.preadv(fd, [buffer[i * size : (i + 1) * size]], self.parts[p].offset + local * size) != size:
                raise InfomaxError(f"{self.parts[p].filename} is shorter than its header says; re-run `infomax embed`")
        return stored.astype(np.float32, copy=False).reshape(*np.shape(rows), self._dim)

    def _fd(self, p: int) -> int | None:
        """An open file descriptor of part p's file (opened once), or None for a part in memory."""
        fds = self.__dict__.setdefault("_fds", {})
        if p not in fds:
            part = self.parts[p]
            fds[p] = os.open(part.filename, os.O_RDONLY) if isinstance(part, np.memmap) and part.filename else None
        return fds[p]

    def __del__(self):
        for fd in self.__dict__.get("_fds", {}).values():
            if fd is not None:
                os.close(fd)

    def release(self) -> None:
        """Drop the pages read so far from this process's resident memory (madvise DONTNEED on
        each memory-mapped part; the system keeps them in its file cache). A pass over more rows
        than memory holds calls this after each block, so its RSS stays that of one block."""
        import mmap

        for part in self.parts:
            mapping = getattr(part, "_mmap", None)
            if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
                mapping.madvise(mmap.MADV_DONTNEED)

    def blocks(self, rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """(start row, float32 block of up to `rows` rows) from the first row to the last."""
        if rows < 1:
            raise InfomaxError(f"blocks need at least 1 row each, got {rows}")
        for start in range(0, self._n, rows):
            yield start, self._range(start, min(start + rows, self._n))
