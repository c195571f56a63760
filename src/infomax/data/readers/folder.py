"""Any folder or zip of images, searched recursively.

Layouts understood (one optional wrapper folder above any of them, e.g. cifar10/ in a zip):
    <class>/<...>/img.jpg                    labelled, one split 'train'
    img.jpg, <...>/img.jpg                   unlabelled (some images not inside a class folder)
    {train,test,val}/<class>/<...>/img.jpg   labelled splits ('valid', 'validation' = val)
    {train,test,val}/img.jpg                 unlabelled splits
Files whose extension is not an image type are ignored; image files that do not decode are
skipped and reported.
"""

from __future__ import annotations

from pathlib import Path

from infomax.data.dataset import Dataset
from infomax.data.plan import Plan, SplitPlan, decode_plan
from infomax.data.sources import cached_tree, is_image_name, natural_key
from infomax.errors import InfomaxError

SPLIT_NAMES = {"train": "train", "test": "test", "val": "val", "valid": "val", "validation": "val"}
SPLIT_ORDER = ("train", "test", "val")


def read(kind: str, path: Path, options: dict, *, progress: bool = True, tree=None,
         store=None) -> Dataset:
    """Decode every image under `path` (options: size, mode, resize)."""
    tree = tree or cached_tree(path)
    plan = plan_folder([n for n in tree.names() if is_image_name(n)], str(path))
    return decode_plan(tree, plan, kind=kind, options=dict(options, mode=options.get("mode", "RGB")), progress=progress,
                       store=store)


def plan_folder(names: list[str], where: str = "the folder") -> Plan:
    """Decide splits and classes from relative image paths."""
    if not names:
        raise InfomaxError(
            f"{where} holds no images (looked for .jpg .jpeg .png .bmp .gif .webp .tif .tiff, in subfolders too); "
            "give a folder or zip of images"
        )
    parts = [name.split("/") for name in names]
    depth = _wrapper_depth(parts)
    rel = [p[depth:] for p in parts]
    skipped: list[tuple[str, str]] = []
    groups: dict[str, list[int]] = {}  # split -> positions in names
    inner: dict[int, list[str]] = {}  # position -> path parts below the split folder
    if any(len(r) > 1 and r[0].lower() in SPLIT_NAMES for r in rel):
        for i, r in enumerate(rel):
            if len(r) > 1 and r[0].lower() in SPLIT_NAMES:
                groups.setdefault(SPLIT_NAMES[r[0].lower()], []).append(i)
                inner[i] = r[1:]
            else:
                skipped.append((names[i], "outside the train/test/val folders"))
    else:
        groups["train"] = list(range(len(names)))
        inner = dict(enumerate(rel))
    labelled = {split: all(len(inner[i]) > 1 for i in ids) for split, ids in groups.items()}
    classes = sorted({inner[i][0] for split, ids in groups.items() if labelled[split] for i in ids}, key=natural_key)
    index = {name: k for k, name in enumerate(classes)}
    splits = {}
    for split in sorted(groups, key=SPLIT_ORDER.index):
        ids = groups[split]
        labels = [index[inner[i][0]] for i in ids] if labelled[split] else None
        splits[split] = SplitPlan([names[i] for i in ids], labels)
    return Plan(splits, classes or None, skipped)


def _wrapper_depth(parts: list[list[str]]) -> int:
    """1 when every image sits inside one common folder that is not a split folder, else 0."""
    firsts = {p[0] for p in parts}
    if len(firsts) == 1 and all(len(p) > 1 for p in parts) and parts[0][0].lower() not in SPLIT_NAMES:
        return 1
    return 0
