"""From a list of image files per split (a plan) to a decoded Dataset.

The folder and Tiny ImageNet readers only decide which files belong to which split and class;
decoding all of them (in parallel, one progress bar, one output size) happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infomax.data.dataset import Dataset, Split
from infomax.data.parallel import decode_names
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


def decode_plan(tree, plan: Plan, *, kind: str, options: dict, progress: bool) -> Dataset:
    """Decode every file of the plan with options size (None = native), mode and resize."""
    size, mode, resize = options.get("size"), options.get("mode", "RGB"), options.get("resize", "shorter-crop")
    names = [name for split in plan.splits.values() for name in split.names]
    if not names:
        raise InfomaxError(f"{tree.path} holds no image files for {kind}")
    decoded = decode_names(
        str(tree.path), names, size=size, mode=mode, resize=resize, progress=progress, desc=f"decoding {kind}"
    )
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
            splits[split_name] = Split(decoded.images[lo:hi], labels, [split.names[i] for i in rows])
        start = end
    height, width = decoded.images.shape[-2:]
    resolved = {**options, "size": int(height) if height == width else None, "mode": mode, "resize": resize}
    resolved = {key: resolved[key] for key in ("size", "mode", "resize", *options) if key in resolved}
    return Dataset(kind, str(tree.path), splits, plan.class_names, options=resolved, skipped=skipped)
