"""Data sets: one spec string (`KIND:PATH,key=value`) names a data set on every command.

    from infomax.data import load
    ds = load("cifar10:cifar-10-python.tar.gz")      # -> Dataset with uint8 N×C×H×W splits

This package imports nothing heavy at import time (the command line stays instant):
`load`, `Dataset` and `Split` are resolved on first use.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from infomax.data.dataset import Dataset, Split

__all__ = ["load", "cache_home", "Dataset", "Split"]


def cache_home() -> Path:
    """Where downloads and decoded data sets are kept: `$INFOMAX_HOME`, else `~/.cache/infomax`."""
    home = os.environ.get("INFOMAX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "infomax"


def load(
    spec: str,
    *,
    download: bool = False,
    progress: bool = True,
    cache_dir: str | None = None,
) -> "Dataset":
    """Read the data set named by `spec` (see `infomax.data.spec`), decoding it once and caching it.

    download: fetch the official release when it is not on disk (cifar10, cifar100,
        tiny-imagenet, mnist, fashion-mnist).
    progress: show progress bars on stderr.
    cache_dir: root for downloads and decoded arrays (default: `cache_home()`).
    """
    from infomax.data.loader import load as _load
    from infomax.data.spec import STREAM_KINDS, parse_spec

    if parse_spec(spec).kind in STREAM_KINDS:
        from infomax.errors import InfomaxError

        raise InfomaxError(f"'{spec}' is a stream of tar shards, not arrays; read it with "
                           "infomax.data.stream.open_stream(spec) (or infomax.load_data, which returns the Stream)")

    return _load(spec, download=download, progress=progress, cache_dir=cache_dir)


def __getattr__(name: str) -> Any:
    if name in ("Dataset", "Split"):
        from infomax.data import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'infomax.data' has no attribute '{name}'")
