"""The data spec string: `KIND:PATH,key=value,key=value` (or `KIND,key=value` for kinds without a path).

Options are peeled off from the right, so a path that itself contains a comma still works as
long as the text after the comma is not a `key=value` with a known key. This module imports
nothing heavy: the command line builds its help text from it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from infomax.errors import InfomaxError

RESIZE_MODES = ("shorter-crop", "resize", "pad")
NORMALIZATION_NAMES = ("center", "symmetric")
MAX_SIZE = 4096

# What each option means (shown in help and in error messages).
OPTION_HELP = {
    "size": "output side in pixels; images become size×size",
    "mode": "RGB or L (grayscale)",
    "resize": "shorter-crop (resize the shorter side, then center crop; default), resize, or pad",
    "norm": "center (x/255-0.5) or symmetric (x/127.5-1)",
    "labels": "fine (default) or coarse: which CIFAR-100 labels",
}
IMAGE_OPTIONS = ("size", "mode", "resize", "norm")


@dataclass(frozen=True)
class Kind:
    """One reader: its name, whether it takes a path, its options and default normalization."""

    name: str
    path: str  # "required", "optional" (a known location or --download), or "none"
    options: tuple[str, ...]
    normalization: str
    summary: str


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "cifar10",
            "optional",
            IMAGE_OPTIONS,
            "center",
            "CIFAR-10 python release: cifar-10-python.tar.gz or its extracted folder",
        ),
        Kind(
            "cifar100",
            "optional",
            IMAGE_OPTIONS + ("labels",),
            "center",
            "CIFAR-100 python release: cifar-100-python.tar.gz or its extracted folder",
        ),
        Kind(
            "tiny-imagenet",
            "optional",
            IMAGE_OPTIONS,
            "symmetric",
            "Tiny ImageNet: tiny-imagenet-200.zip or its folder (splits train, val)",
        ),
        Kind(
            "idx",
            "required",
            IMAGE_OPTIONS,
            "center",
            "a folder of IDX files: train-images-idx3-ubyte[.gz], t10k-... (MNIST layout)",
        ),
        Kind(
            "mnist",
            "optional",
            IMAGE_OPTIONS,
            "center",
            "MNIST IDX files (path optional: looks in the cache; --download fetches them)",
        ),
        Kind(
            "fashion-mnist",
            "optional",
            IMAGE_OPTIONS,
            "center",
            "Fashion-MNIST IDX files (path optional: /usr/share/datasets/fashion-mnist, the cache)",
        ),
        Kind(
            "folder",
            "required",
            IMAGE_OPTIONS,
            "center",
            "any folder or .zip of images; class = first-level subfolder; train/test/val split folders",
        ),
        Kind(
            "digits",
            "none",
            IMAGE_OPTIONS,
            "center",
            "scikit-learn's bundled 8×8 digits, upscaled to size=32, grayscale, 80/20 train/test",
        ),
        Kind(
            "webdataset",
            "required",
            IMAGE_OPTIONS,
            "center",
            "tar shards, streamed: a folder with shards.json, or DIR/shard-{000000..000099}.tar",
        ),
    )
}
ALIASES = {
    "cifar-10": "cifar10",
    "cifar-100": "cifar100",
    "tiny-imagenet-200": "tiny-imagenet",
    "tinyimagenet": "tiny-imagenet",
    "fashion_mnist": "fashion-mnist",
    "fashionmnist": "fashion-mnist",
    "image-folder": "folder",
    "wds": "webdataset",
}
STREAM_KINDS = ("webdataset",)  # kinds read as a stream of batches (infomax.data.stream), not arrays


@dataclass(frozen=True)
class DataSpec:
    """A parsed spec: reader kind, path ('' when none) and typed, validated options."""

    kind: str
    path: str
    options: dict = field(default_factory=dict)
    text: str = ""


def kind_info(name: str) -> Kind:
    """The Kind for a name or alias, or a clear error listing the known kinds."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in KINDS:
        raise InfomaxError(
            f"unknown data kind '{name}'; known kinds: {', '.join(KINDS)} "
            f"(write a data spec as KIND:PATH, e.g. folder:photos/ or cifar10:cifar-10-python.tar.gz)"
        )
    return KINDS[key]


def parse_spec(text: str) -> DataSpec:
    """Parse `KIND[:PATH][,key=value...]` into a DataSpec; raise InfomaxError on any mistake."""
    text = text.strip()
    match = re.match(r"([A-Za-z][\w-]*)(:|,|$)", text)
    if not match:
        hint = f" (did you mean folder:{text}?)" if text and os.path.exists(text) else ""
        raise InfomaxError(f"cannot read data spec '{text}': expected KIND:PATH{hint}")
    name, sep = match.group(1), match.group(2)
    if sep == "" and os.path.exists(text) and name.lower() not in KINDS and name.lower() not in ALIASES:
        raise InfomaxError(f"data spec '{text}' names no kind; write it as KIND:PATH, e.g. folder:{text}")
    kind = kind_info(name)
    body = text[match.end() :] if sep == ":" else text[match.end() - len(sep) :]
    path, raw = _split_options(body, kind, has_path=(sep == ":"))
    if kind.path == "none" and path:
        raise InfomaxError(
            f"'{kind.name}' takes no path (got '{path}'); write it as {kind.name} or {kind.name},size=64"
        )
    if kind.path == "required" and not path:
        raise InfomaxError(f"'{kind.name}' needs a path: {kind.name}:PATH ({kind.summary})")
    options = {key: _parse_value(key, value, text) for key, value in raw.items()}
    return DataSpec(kind.name, path, options, text)


def _split_options(body: str, kind: Kind, *, has_path: bool) -> tuple[str, dict[str, str]]:
    """Peel `,key=value` segments off the right of `body`; return (path, raw options)."""
    options: dict[str, str] = {}
    head = body
    while "," in head:
        rest, last = head.rsplit(",", 1)
        m = re.fullmatch(r"\s*([A-Za-z][\w-]*)\s*=(.*)", last)
        if not m:
            if has_path:
                break  # a comma that belongs to the path
            raise InfomaxError(f"cannot read option '{last}' in data spec: expected key=value")
        key = m.group(1).lower()
        if key not in kind.options:
            if has_path and os.path.exists(os.path.expanduser(head)):
                break  # e.g. a file literally named "a,b=c"
            raise InfomaxError(
                f"unknown option '{key}' for {kind.name}; valid options: "
                + "; ".join(f"{k} ({OPTION_HELP[k]})" for k in kind.options)
            )
        if key in options:
            raise InfomaxError(f"option '{key}' is given twice in the data spec")
        options[key] = m.group(2).strip()
        head = rest
    if not has_path and head.strip():
        raise InfomaxError(f"cannot read '{head}' in data spec: expected ,key=value options")
    return head.strip() if has_path else "", options


def _parse_value(key: str, value: str, text: str):
    """Turn one option value into its type, or explain what is allowed."""
    low = value.lower()
    if key == "size":
        if not re.fullmatch(r"\d+", value) or not 1 <= int(value) <= MAX_SIZE:
            raise InfomaxError(f"size={value} in '{text}': expected a whole number of pixels from 1 to {MAX_SIZE}")
        return int(value)
    if key == "mode":
        mode = {"rgb": "RGB", "l": "L", "gray": "L", "grey": "L", "grayscale": "L"}.get(low)
        if mode is None:
            raise InfomaxError(f"mode={value} in '{text}': expected RGB or L (grayscale)")
        return mode
    if key == "resize":
        if low not in RESIZE_MODES:
            raise InfomaxError(f"resize={value} in '{text}': expected one of {', '.join(RESIZE_MODES)}")
        return low
    if key == "norm":
        if low not in NORMALIZATION_NAMES:
            raise InfomaxError(f"norm={value} in '{text}': expected center or symmetric")
        return low
    if key == "labels":
        if low not in ("fine", "coarse"):
            raise InfomaxError(f"labels={value} in '{text}': expected fine or coarse")
        return low
    raise InfomaxError(f"unknown option '{key}'")  # unreachable: keys are checked before


def spec_help() -> str:
    """The spec grammar, kinds and options as plain text for `--help`."""
    lines = [
        "A data spec names a data set: KIND:PATH[,key=value...]  (digits: just `digits`).",
        "Examples: digits   cifar10:cifar-10-python.tar.gz   folder:imgs.zip,size=64,mode=L",
        "",
        "kinds:",
    ]
    lines += [f"  {k.name:<14} {k.summary}" for k in KINDS.values()]
    lines += ["", "options:"]
    lines += [f"  {key:<14} {text}" for key, text in OPTION_HELP.items()]
    return "\n".join(lines)
