"""One reader per data kind: `read(kind, path, options, *, progress, store) -> Dataset`.

Readers write the images of each split into `store` (infomax.data.store: the cache entry
being built), or keep them in memory when store is None.
"""

from __future__ import annotations

from typing import Callable


def reader(kind: str) -> Callable:
    """The read function for a kind name of infomax.data.spec.KINDS."""
    if kind in ("cifar10", "cifar100"):
        from infomax.data.readers.cifar import read
    elif kind == "tiny-imagenet":
        from infomax.data.readers.tiny_imagenet import read
    elif kind in ("idx", "mnist", "fashion-mnist"):
        from infomax.data.readers.idx import read
    elif kind == "folder":
        from infomax.data.readers.folder import read
    elif kind == "digits":
        from infomax.data.readers.digits import read
    else:
        raise KeyError(kind)
    return read
