"""From a list of image files per split (a plan) to a decoded Dataset.

The folder and Tiny ImageNet readers only decide which files belong to which split and class;
decoding all of them (in parallel, one progress bar, one output size) happens here, block by
block into the store's files of each split (the whole array is never held in memory).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infomax.data.dataset import Dataset, Split
from infomax.data.parallel import decode_names
from infomax.data.store import Rows, Store
from infomax.errors import InfomaxError


@dataclass
class SplitPlan:
    names: list[str]  # files in the tree, in output order
    labels: list[int] | None = None  # class index per name; None when unlabelled


@dataclass
class Plan:
    splits: dict[str, SplitPlan]  # train first
    class_names: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)  # files left out before decoding
    class_ids: list[str] | None = None  # the classes as the files name them (folders, wnids), when not the names


class SplitSink:
    """Routes decoded rows (positions in the names of all splits, in order) to each split's Rows."""

    def __init__(self, plan: Plan, store: Store):
        self.store = store
        self.names = list(plan.splits)
        self.ends = np.cumsum([len(split.names) for split in plan.splits.values()])  # split i: [ends[i-1], ends[i])
        self.rows: dict[str, Rows] = {}

    def __call__(self, positions: np.ndarray, pixels: np.ndarray) -> None:
        which = np.searchsorted(self.ends, positions, side="right")  # the split of each row
        for i in np.unique(which):
            name = self.names[i]
            if name not in self.rows:
                capacity = int(self.ends[i] - (self.ends[i - 1] if i else 0))
                self.rows[name] = self.store.rows(name, pixels.shape[1:], capacity)
            self.rows[name].append(pixels[which == i])

    def finish(self) -> dict[str, np.ndarray]:
        return {name: rows.finish() for name, rows in self.rows.items()}

    def close(self) -> None:
        for rows in self.rows.values():
            rows.close()


def decode_plan(tree, plan: Plan, *, kind: str, options: dict, progress: bool, store: Store | None = None) -> Dataset:
    """Decode every file of the plan with options size (None = native), mode and resize into
    `store` (default: memory)."""
    size, mode, resize = options.get("size"), options.get("mode", "RGB"), options.get("resize", "shorter-crop")
    names = [name for split in plan.splits.values() for name in split.names]
    if not names:
        raise InfomaxError(f"{tree.path} holds no image files for {kind}")
    sink = SplitSink(plan, store or Store(None))
    try:
        decoded = decode_names(
            str(tree.path), names, size=size, mode=mode, resize=resize, progress=progress, desc=f"decoding {kind}",
            sink=sink,
        )
        arrays = sink.finish()  # split -> uint8 K×C×H×W
    finally:
        sink.close()
    skipped = list(plan.skipped) + decoded.failed
    if len(decoded.kept) == 0:
        examples = "; ".join(f"{name}: {reason}" for name, reason in decoded.failed[:3])
        raise InfomaxError(
            f"none of the {len(names)} image files in {tree.path} could be decoded ({examples}); "
            "check that these are image files (jpg, png, bmp, gif, webp, tiff)"
        )
    splits: dict[str, Split] = {}
    start = 0
    for split_name, split in plan.splits.items():
        end = start + len(split.names)
        lo, hi = np.searchsorted(decoded.kept, [start, end])
        rows = decoded.kept[lo:hi] - start  # positions within this split
        if len(rows):
            labels = None if split.labels is None else np.asarray(split.labels, np.int64)[rows]
            splits[split_name] = Split(arrays[split_name], labels, [split.names[i] for i in rows])
        start = end
    height, width = decoded.shape[-2:]
    resolved = {**options, "size": int(height) if height == width else None, "mode": mode, "resize": resize}
    resolved = {key: resolved[key] for key in ("size", "mode", "resize", *options) if key in resolved}
    return Dataset(kind, str(tree.path), splits, plan.class_names, options=resolved, skipped=skipped,
                   class_ids=plan.class_ids)
