"""Where a first load puts the decoded images: appended block by block to .npy files, never whole.

A reader asks its `Store` for one `Rows` per split and appends uint8 K×C×H×W blocks in order;
`finish()` fixes the row count in the file's header and returns the rows memory-mapped. The
row count is known only at the end (images that fail to decode are left out), so the header is
written for the most rows the split can have and rewritten, padded to the same length, at the end.
A store without a folder keeps the rows in memory (the last resort when no folder is writable).
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

import numpy as np

MAGIC = b"\x93NUMPY\x01\x00"  # .npy format version 1.0
ALIGN = 64  # the header pads the data to this boundary, as numpy's own writer does


class WriteFailed(Exception):
    """A store's file could not be written (disk full, no permission); `reason` says why."""

    def __init__(self, path: Path, exc: OSError):
        self.reason = f"{path}: {exc.strerror or exc}"
        super().__init__(self.reason)


def npy_header(shape: tuple[int, ...], length: int | None = None) -> bytes:
    """The .npy (1.0) header of a C-ordered uint8 array of `shape`, padded to `length` bytes
    (default: the shortest multiple of ALIGN)."""
    text = "{'descr': '|u1', 'fortran_order': False, 'shape': %r, }" % (tuple(int(s) for s in shape),)
    fixed = len(MAGIC) + 2 + len(text) + 1  # magic, header length, text, newline
    length = length or -(-fixed // ALIGN) * ALIGN
    if length < fixed:
        raise ValueError(f"a header of {length} bytes cannot hold shape {shape}")
    body = text + " " * (length - fixed) + "\n"
    return MAGIC + struct.pack("<H", len(body)) + body.encode("latin1")


class Store:
    """Makes the `Rows` of each split: files `<split>.images.npy` in `folder`, or arrays in memory."""

    def __init__(self, folder: Path | None):
        self.folder = None if folder is None else Path(folder)

    def rows(self, split: str, row_shape: tuple[int, ...], capacity: int) -> "Rows":
        """Room for up to `capacity` images of C×H×W `row_shape` in split `split`."""
        if self.folder is None:
            return MemoryRows(row_shape, capacity)
        return FileRows(self.folder / f"{split}.images.npy", row_shape, capacity)


class Rows:
    """Appends uint8 K×C×H×W blocks; `finish()` returns the N×C×H×W array of all of them."""

    count: int

    def append(self, block: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Give up (after an error): release the file without finishing it."""


class MemoryRows(Rows):
    def __init__(self, row_shape: tuple[int, ...], capacity: int):
        self.array = np.empty((capacity, *row_shape), np.uint8)
        self.count = 0

    def append(self, block: np.ndarray) -> None:
        self.array[self.count : self.count + len(block)] = block
        self.count += len(block)

    def finish(self) -> np.ndarray:
        return self.array[: self.count]


class FileRows(Rows):
    """A .npy file written front to back: a header sized for `capacity` rows, then the rows."""

    def __init__(self, path: Path, row_shape: tuple[int, ...], capacity: int):
        self.path, self.row_shape, self.count = Path(path), tuple(int(s) for s in row_shape), 0
        self.capacity = int(capacity)
        self.header_length = len(npy_header((self.capacity, *self.row_shape)))
        try:
            self.file = open(self.path, "wb")
            self.file.write(npy_header((self.capacity, *self.row_shape)))
        except OSError as exc:
            raise WriteFailed(self.path, exc) from None

    def append(self, block: np.ndarray) -> None:
        if tuple(block.shape[1:]) != self.row_shape or block.dtype != np.uint8:
            raise ValueError(f"rows of {block.dtype} {block.shape[1:]}, expected uint8 {self.row_shape}")
        if self.count + len(block) > self.capacity:
            raise ValueError(f"{self.count + len(block)} rows for room for {self.capacity}")
        if len(block) == 0:
            return
        try:
            self.file.write(np.ascontiguousarray(block).data)  # a C-ordered buffer: written as is
        except OSError as exc:
            raise WriteFailed(self.path, exc) from None
        self.count += len(block)

    def finish(self) -> np.ndarray:
        """Rewrite the header with the final row count (same length) and map the file read-only."""
        try:
            self.file.seek(0)
            self.file.write(npy_header((self.count, *self.row_shape), self.header_length))
            self.file.close()
        except OSError as exc:
            raise WriteFailed(self.path, exc) from None
        return np.load(self.path, mmap_mode="r", allow_pickle=False)

    def close(self) -> None:
        self.file.close()


RELEASE_BYTES = 64 << 20  # release_pages after reading about this much of a memory map


def release_pages(array: np.ndarray) -> None:
    """Unmap the pages of a memory-mapped array that this process has read (they stay in the
    page cache, and the next read maps them again), so its resident memory does not grow with
    the file. A no-op for arrays in memory or where the system has no MADV_DONTNEED."""
    release_mapping(getattr(array, "_mmap", None))  # np.memmap and its slices keep the mmap object here


def release_mapping(mapping: mmap.mmap | None) -> None:
    """Unmap the pages of an mmap this process has read (MADV_DONTNEED; a no-op where there is none)."""
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        try:
            mapping.madvise(mmap.MADV_DONTNEED)
        except (OSError, ValueError):
            pass  # closed, or refused: only the memory figure suffers


def blocks(array: np.ndarray, rows: int):
    """Yield (start, in-memory copy of array[start : start + rows]) over the whole array,
    releasing a memory map's pages after each block: reading all of a large cached split keeps
    the resident memory at a couple of blocks."""
    for start in range(0, len(array), rows):
        block = np.array(array[start : start + rows])
        release_pages(array)
        yield start, block
        del block
