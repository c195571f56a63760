"""`atomic_write`: replace a file all at once, so a reader (or a crash) never sees half of it."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable, Union

Data = Union[str, bytes, Callable[[Path], object]]


def temp_path(path: Path) -> Path:
    """A fresh hidden name next to `path` (same folder, so the rename stays on one file system)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def atomic_write(path: str | Path, data: Data) -> Path:
    """Write `data` to `path`: into a temp file in the same folder, fsync, then os.replace.

    data: str (written as UTF-8), bytes, or a writer `f(tmp_path)` that creates the file itself
    (np.save, DataFrame.to_parquet, Figure.savefig, ...). If anything fails, the temp file is
    removed and `path` keeps its old content (or stays absent). Returns `path`.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        if isinstance(data, str):
            tmp.write_bytes(data.encode("utf-8"))
        elif isinstance(data, (bytes, bytearray, memoryview)):
            tmp.write_bytes(data)
        elif callable(data):
            data(tmp)
        else:
            raise TypeError(f"atomic_write takes str, bytes or a writer function, not {type(data).__name__}")
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only still there when something failed
    return path


def _fsync(path: Path) -> None:
    """Flush the file's data to the disk before it is renamed into place."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
