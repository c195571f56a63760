"""Tiny ImageNet: tiny-imagenet-200.zip read without extracting, or its folder.

tiny-imagenet-200/
    wnids.txt                      the class ids (one per line)
    words.txt                      id<TAB>names, comma separated (all of WordNet)
    train/<wnid>/images/*.JPEG     training images of class <wnid>
    val/images/*.JPEG              validation images ...
    val/val_annotations.txt        ... labelled here: file<TAB>wnid<TAB>box
Splits: train, val (the unlabelled test split is left out). Classes are the wnids in sorted
order (as an image-folder reader would number them), named by their first WordNet synonym in
words.txt ('goldfish'); the wnids stay available as the data set's class_ids.
"""

from __future__ import annotations

from pathlib import Path

from infomax.data.dataset import Dataset
from infomax.data.plan import Plan, SplitPlan, decode_plan
from infomax.data.sources import cached_tree, is_image_name, natural_key
from infomax.errors import InfomaxError

LAYOUT = (
    "tiny-imagenet-200/{wnids.txt, words.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG, val/val_annotations.txt}"
)


def read(kind: str, path: Path, options: dict, *, progress: bool = True, tree=None,
         store=None) -> Dataset:
    """Decode train and val (options: size, mode, resize)."""
    tree = tree or cached_tree(path)
    plan = plan_tiny_imagenet(tree)
    return decode_plan(tree, plan, kind=kind, options=dict(options, mode=options.get("mode", "RGB")), progress=progress,
                       store=store)


def plan_tiny_imagenet(tree) -> Plan:
    """Files, labels and class names of train and val, without decoding any image."""
    names = tree.names()
    root = _root(names, tree.path)
    wnids = sorted(set(_text(tree, root + "wnids.txt").split()))
    if not wnids:
        raise InfomaxError(f"{tree.path}: {root}wnids.txt lists no classes")
    words = _words(tree, root + "words.txt") if root + "words.txt" in set(names) else {}
    class_names = _class_names(wnids, words)
    index = {wnid: k for k, wnid in enumerate(wnids)}
    skipped: list[tuple[str, str]] = []

    train_names, train_labels = [], []
    prefix = root + "train/"
    for name in names:
        if not (name.startswith(prefix) and is_image_name(name)):
            continue
        parts = name[len(prefix) :].split("/")
        if len(parts) != 3 or parts[1] != "images":
            continue
        if parts[0] not in index:
            skipped.append((name, f"class {parts[0]} is not listed in wnids.txt"))
            continue
        train_names.append(name)
        train_labels.append(index[parts[0]])

    annotations = root + "val/val_annotations.txt"
    if annotations not in set(names):
        raise _layout_error(tree.path, f"no {annotations}")
    present = set(names)
    val = []
    for line in _text(tree, annotations).splitlines():
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0].strip():
            continue
        name, wnid = f"{root}val/images/{fields[0].strip()}", fields[1].strip()
        if name not in present:
            skipped.append((name, "listed in val_annotations.txt but missing"))
        elif wnid not in index:
            skipped.append((name, f"class {wnid} is not listed in wnids.txt"))
        else:
            val.append((name, index[wnid]))
    val.sort(key=lambda item: natural_key(item[0]))
    if not train_names:
        raise _layout_error(tree.path, f"no images in {prefix}<wnid>/images/")
    splits = {"train": SplitPlan(train_names, train_labels)}
    if val:
        splits["val"] = SplitPlan([n for n, _ in val], [label for _, label in val])
    return Plan(splits, class_names, skipped, class_ids=wnids)


def _root(names: list[str], path: Path) -> str:
    """The folder prefix ('' or 'tiny-imagenet-200/') that holds wnids.txt."""
    roots = sorted(
        (n[: -len("wnids.txt")] for n in names if n == "wnids.txt" or n.endswith("/wnids.txt")),
        key=lambda r: r.count("/"),
    )
    if not roots:
        raise _layout_error(path, "no wnids.txt")
    return roots[0]


def _text(tree, name: str) -> str:
    try:
        return tree.read(name).decode("utf-8", "replace")
    except OSError as exc:
        raise InfomaxError(f"{tree.path}: cannot read {name} ({exc})") from None


def _words(tree, name: str) -> dict[str, str]:
    words = {}
    for line in _text(tree, name).splitlines():
        wnid, _, text = line.partition("\t")
        words[wnid.strip()] = text.strip()
    return words


def _class_names(wnids: list[str], words: dict[str, str]) -> list[str]:
    """First synonym of each class ('goldfish'), the full entry where first synonyms repeat."""
    first = [words.get(w, w).split(",")[0].strip() or w for w in wnids]
    return [f if first.count(f) == 1 else f"{f} ({w})" for f, w in zip(first, wnids, strict=True)]


def _layout_error(path: Path, problem: str) -> InfomaxError:
    return InfomaxError(
        f"{path} does not look like Tiny ImageNet ({problem}); expected {LAYOUT}. "
        "For a plain folder of images use folder:PATH"
    )
