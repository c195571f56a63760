"""`load(spec)`: parse the spec, find the files, and decode them once (later runs read the cache).

The first load decodes straight into the cache entry's files (infomax.data.store), so memory
does not grow with the data set. When the cache folder cannot be written, the images go to a
temporary folder (mapped, then deleted), and only when that fails too into memory.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from infomax.data import cache_home
from infomax.data.cache import CacheDamaged, begin, commit, entry_path, read_entry
from infomax.data.dataset import Dataset
from infomax.data.locate import locate
from infomax.data.readers import reader
from infomax.data.sources import FolderTree
from infomax.data.spec import KINDS, parse_spec
from infomax.data.store import Store, WriteFailed

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

        def read(store: Store) -> Dataset:
            return reader(parsed.kind)(parsed.kind, path, options, progress=progress, store=store, **extra)

        dataset = _decode(entry, read)
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


def _decode(entry: Path, read) -> Dataset:
    """read(store) into a new cache entry; failing that, a temporary folder; failing that, memory."""
    try:
        tmp = begin(entry)
    except OSError as exc:
        _warn(entry, exc.strerror or str(exc))
    else:
        dataset = None
        try:
            dataset = read(Store(tmp))
            return commit(tmp, entry, dataset)
        except WriteFailed as exc:
            _warn(entry, exc.reason)
        except OSError as exc:
            if dataset is None:
                raise  # from reading the source, not from writing the cache
            _warn(entry, exc.strerror or str(exc))  # writing the labels, the index or renaming
            return dataset  # decoded already: mapped from files that are deleted below
        finally:
            shutil.rmtree(tmp, ignore_errors=True)  # gone after a rename; the mapped files stay readable
    try:
        folder = Path(tempfile.mkdtemp(prefix="infomax-decoded-"))
    except OSError:
        return read(Store(None))
    try:
        return read(Store(folder))
    except WriteFailed as exc:
        print(f"infomax: cannot write {exc.reason}; decoding into memory", file=sys.stderr)
        return read(Store(None))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the open memory maps keep the files' data until closed


def _warn(entry: Path, reason: str) -> None:
    print(
        f"infomax: cannot write the cache at {entry} ({reason}); "
        "continuing without it (set INFOMAX_HOME to a writable folder with room)",
        file=sys.stderr,
    )
