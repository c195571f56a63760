"""Any folder or zip of images, searched recursively.

Layouts understood (one optional wrapper folder above any of them, e.g. cifar10/ in a zip):
    <class>/<...>/img.jpg                    labelled, one split 'train'
    img.jpg, <...>/img.jpg                   unlabelled (some images not inside a class folder)
    {train,test,val}/<class>/<...>/img.jpg   labelled splits ('valid', 'validation' = val)
    {train,test,val}/img.jpg                 unlabelled splits
Files whose extension is not an image type are ignored; image files that do not decode are
skipped and reported.

Class names are the class folders' names, or readable names from a `classes.txt` at the top of
the data set (beside the class or split folders, or inside the one wrapper folder): one line per
class, `FOLDER<TAB>NAME` (e.g. `n01443537<TAB>goldfish`); blank lines and lines starting with #
are skipped, folders it does not list keep their own name, lines naming other folders are
ignored. The folder names stay available as the data set's class_ids.
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
    plan = plan_tree(tree, str(path))
    return decode_plan(tree, plan, kind=kind, options=dict(options, mode=options.get("mode", "RGB")), progress=progress,
                       store=store)


CLASSES_FILE = "classes.txt"


def plan_tree(tree, where: str = "the folder") -> Plan:
    """plan_folder over a tree's image files, with class names from its classes.txt (if any)."""
    names = tree.names()
    plan = plan_folder([n for n in names if is_image_name(n)], where)
    found = [n for n in names if n == CLASSES_FILE or (n.endswith("/" + CLASSES_FILE) and n.count("/") == 1)]
    if plan.class_names and found:
        name = min(found, key=lambda n: n.count("/"))
        try:
            text = tree.read(name).decode("utf-8-sig", "replace")
        except OSError as exc:
            raise InfomaxError(f"{where}: cannot read {name} ({exc})") from None
        plan.class_ids = plan.class_names
        plan.class_names = readable_names(plan.class_names, parse_classes(text, f"{where}/{name}"))
    return plan


def parse_classes(text: str, where: str = CLASSES_FILE) -> dict[str, str]:
    """The FOLDER<TAB>NAME lines of a classes.txt as {folder: name}; InfomaxError on a bad line."""
    names: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        folder, tab, name = line.partition("\t")
        folder, name = folder.strip(), name.strip()
        if not tab or not folder or not name:
            raise InfomaxError(f"{where} line {number}: expected FOLDER<TAB>NAME (a class folder, a tab, its "
                               f"readable name), got {line.strip()[:80]!r}")
        if folder in names:
            raise InfomaxError(f"{where} line {number}: the folder {folder!r} is named twice; keep one line for it")
        names[folder] = name
    return names


def readable_names(folders: list[str], names: dict[str, str]) -> list[str]:
    """The readable name of each class folder (its own name when unlisted); a name that two
    folders share gets the folder added: 'crane (n02012849)'."""
    first = [names.get(f, f) for f in folders]
    return [n if first.count(n) == 1 else f"{n} ({f})" for n, f in zip(first, folders, strict=True)]


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
