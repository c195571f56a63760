"""What every data reader returns: uint8 images per split, optional labels, class names, source ids."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# How the model turns uint8 pixels into floats: x * scale + offset.
NORMALIZATIONS = {
    "center": (1.0 / 255.0, -0.5),  # x/255 - 0.5   (the reference's CIFAR-10 scaling)
    "symmetric": (1.0 / 127.5, -1.0),  # x/127.5 - 1 (the reference's Tiny ImageNet scaling)
}


def pixel_scale(normalization: str) -> tuple[float, float]:
    """(scale, offset) of a named normalization; `infomax.data.pixels.normalize_pixels` applies it."""
    if normalization not in NORMALIZATIONS:
        from infomax.errors import InfomaxError

        raise InfomaxError(f"unknown pixel normalization '{normalization}'; use one of {', '.join(NORMALIZATIONS)} "
                           "(the data spec's norm= option)")
    return NORMALIZATIONS[normalization]


@dataclass
class Split:
    """One split of a data set. Row i of every field describes image i."""

    images: np.ndarray  # uint8, N×C×H×W (often a read-only memory map)
    labels: np.ndarray | None  # int64, N; None when unlabelled
    ids: list[str]  # source id per image: file path or archive member

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass
class Dataset:
    """A decoded data set: named splits in a fixed order (train first, then test or val)."""

    kind: str  # reader name, e.g. "cifar10"
    path: str  # where it was read from
    splits: dict[str, Split]
    class_names: list[str] | None = None
    normalization: str = "center"  # a key of NORMALIZATIONS
    options: dict = field(default_factory=dict)  # the resolved reader options
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (source id, reason) not decoded
    cache_path: str | None = None  # the decoded-array cache folder this was read from, if any
    from_cache: bool = False  # True when no decoding was needed
    spec: str = ""  # the data spec it was loaded from ("" for arrays passed in memory)
    class_ids: list[str] | None = None  # the classes as the files name them (Tiny ImageNet's wnids, class
    # folders renamed by a classes.txt), when class_names are readable names made from them

    @property
    def image_shape(self) -> tuple[int, int, int]:
        first = next(iter(self.splits.values()))
        return tuple(int(s) for s in first.images.shape[1:])

    @property
    def num_images(self) -> int:
        return sum(len(s) for s in self.splits.values())

    @property
    def num_classes(self) -> int | None:
        return None if self.class_names is None else len(self.class_names)

    def split(self, name: str) -> Split:
        from infomax.errors import InfomaxError

        if name not in self.splits:
            raise InfomaxError(
                f"{self.kind}:{self.path} has no split '{name}' (it has: {', '.join(self.splits)})"
            )
        return self.splits[name]

    @property
    def train_split(self) -> str:
        """The split used for training: 'train' when present, else the first one."""
        return "train" if "train" in self.splits else next(iter(self.splits))

    @property
    def train_images(self) -> int:
        """The images training reads: the train split's."""
        return len(self.splits[self.train_split])

    @property
    def heldout_split(self) -> str | None:
        """The held-out split used as queries: 'test' or 'val' when present."""
        for name in ("test", "val"):
            if name in self.splits:
                return name
        return None
