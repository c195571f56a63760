"""`load(spec)`: parse the spec, find the files, and decode them once (later runs read the cache)."""

from __future__ import annotations

import sys
from pathlib import Path

from infomax.data import cache_home
from infomax.data.cache import CacheDamaged, entry_path, read_entry, write_entry
from infomax.data.dataset import Dataset
from infomax.data.locate import locate
from infomax.data.readers import reader
from infomax.data.sources import FolderTree
from infomax.data.spec import KINDS, parse_spec

TREE_KINDS = ("folder", "tiny-imagenet")  # kinds read from a folder-or-zip tree of image files


def load(spec: str, *, download: bool = False, progress: bool = True, cache_dir: str | None = None) -> Dataset:
    """See infomax.data.load."""
    parsed = parse_spec(spec)
    root = Path(cache_dir).expanduser() if cache_dir else cache_home()
    path = locate(parsed, root=root, download=download, progress=progress)
    options = dict(parsed.options)
    norm = options.pop("norm", None) or KINDS[parsed.kind].normalization  # does not change the pixels

    folder = FolderTree(path) if path is not None and path.is_dir() else None  # listed once, reused
    key = {
        "kind": parsed.kind,
        "path": str(path.resolve()) if path else None,
        "source": folder.fingerprint() if folder else _fingerprint(path),
        "options": options,
    }
    entry = entry_path(root, parsed.kind, key)
    try:
        dataset = read_entry(entry)
    except CacheDamaged as exc:
        print(f"infomax: the cached copy {entry} is damaged ({exc}); decoding again", file=sys.stderr)
        dataset = None
    if dataset is None:
        extra = {"tree": folder} if folder is not None and parsed.kind in TREE_KINDS else {}
        dataset = reader(parsed.kind)(parsed.kind, path, options, progress=progress, **extra)
        dataset = _store(entry, dataset)
        dataset.from_cache = False
    if path is not None:
        dataset.path = str(path)  # as given this time (the cache key uses the resolved path)
    dataset.normalization = norm
    dataset.options = dict(dataset.options, norm=norm)
    dataset.spec = spec
    if dataset.skipped:
        where = (
            f"; the list with reasons is in {Path(dataset.cache_path) / 'skipped.txt'}" if dataset.cache_path else ""
        )
        print(
            f"infomax: skipped {len(dataset.skipped)} files of {dataset.path} that are not readable images{where}",
            file=sys.stderr,
        )
    return dataset


def _fingerprint(path: Path | None) -> str:
    """What changes when a file source changes: its size and mtime (a zip is not opened)."""
    if path is None:  # the digits bundled with scikit-learn
        from importlib.metadata import version

        return f"scikit-learn-{version('scikit-learn')}"
    st = path.stat()
    return f"{st.st_size}-{st.st_mtime_ns}"


def _store(entry: Path, dataset: Dataset) -> Dataset:
    """Cache the decoded arrays; when the cache cannot be written, go on with them in memory."""
    try:
        return write_entry(entry, dataset)
    except OSError as exc:
        print(
            f"infomax: cannot write the cache at {entry} ({exc.strerror or exc}); "
            "continuing without it (set INFOMAX_HOME to a writable folder)",
            file=sys.stderr,
        )
        return dataset
