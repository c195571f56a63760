"""What `infomax data info` prints: the shape of a data set and its pixel statistics."""

from __future__ import annotations

import os

import numpy as np

from infomax.data.dataset import Dataset, pixel_scale
from infomax.data.store import blocks

CHUNK_BYTES = 16 << 20  # pixels read per step when counting pixel values
MAX_CLASS_NAMES = 20


def pixel_stats(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the uint8 pixels (0..255) over all splits, exact; reads
    CHUNK_BYTES of pixels at a time (memory does not grow with the data set)."""
    channels = dataset.image_shape[0]
    rows = max(1, CHUNK_BYTES // int(np.prod(dataset.image_shape)))
    counts = np.zeros((channels, 256), np.int64)  # a histogram per channel
    for split in dataset.splits.values():
        for _, block in blocks(split.images, rows):
            for c in range(channels):
                counts[c] += np.bincount(block[:, c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64)
    total = counts.sum(axis=1)
    mean = counts @ values / np.maximum(total, 1)
    var = counts @ (values**2) / np.maximum(total, 1) - mean**2
    return mean, np.sqrt(np.maximum(var, 0.0))


def describe(dataset: Dataset, seconds: float) -> str:
    """A readable report of `dataset`, loaded in `seconds`."""
    mean, std = pixel_stats(dataset)
    scale, offset = pixel_scale(dataset.normalization)  # the affine map normalize_pixels applies
    c, h, w = dataset.image_shape
    splits = ", ".join(
        f"{name} {len(split):,}{'' if split.labels is not None else ' (unlabelled)'}"
        for name, split in dataset.splits.items()
    )
    lines = [
        f"kind:          {dataset.kind}",
        f"path:          {dataset.path}",
        f"splits:        {splits}",
        f"images:        {dataset.num_images:,}",
        f"image shape:   {c}×{h}×{w} (C×H×W, uint8)",
        f"classes:       {dataset.num_classes if dataset.num_classes is not None else 'none (unlabelled)'}",
    ]
    if dataset.class_names:
        names = dataset.class_names[:MAX_CLASS_NAMES]
        more = len(dataset.class_names) - len(names)
        lines.append(f"class names:   {', '.join(names)}" + (f", … (+{more} more)" if more > 0 else ""))
    if dataset.class_ids:
        ids = dataset.class_ids[:MAX_CLASS_NAMES]
        more = len(dataset.class_ids) - len(ids)
        lines.append(f"class ids:     {', '.join(ids)}" + (f", … (+{more} more)" if more > 0 else ""))
    lines += [
        f"pixel mean:    {_numbers(mean)} (per channel, 0..255)",
        f"pixel std:     {_numbers(std)}",
        f"normalization: {dataset.normalization} → mean {_numbers(mean * scale + offset, 3)}, "
        f"std {_numbers(std * scale, 3)}",
        f"options:       {', '.join(f'{k}={v}' for k, v in dataset.options.items() if v is not None)}",
    ]
    if dataset.skipped:
        lines.append(f"skipped:       {len(dataset.skipped)} unreadable files")
    source = "from the cache" if dataset.from_cache else "decoded"
    lines.append(f"load time:     {seconds:.2f} s ({source}{': ' + dataset.cache_path if dataset.cache_path else ''})")
    return "\n".join(lines)


def _numbers(values: np.ndarray, digits: int = 1) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


def describe_stream(stream) -> str:
    """A readable report of a Stream (infomax.data.stream), from its manifest: no image is decoded."""
    c, h, w = stream.image_shape
    folders = sorted({os.path.dirname(u) for u in stream.urls})
    lines = [
        "kind:          webdataset (streamed)",
        f"shards:        {stream.num_shards} ({os.path.basename(stream.urls[0])} … "
        f"{os.path.basename(stream.urls[-1])}) in {', '.join(folders)}",
        f"samples:       {stream.num_samples:,}",
        f"image shape:   {c}×{h}×{w} (C×H×W, uint8)",
        f"classes:       {stream.num_classes if stream.num_classes is not None else 'none'}"
        + ("" if stream.labelled else " (unlabelled)"),
    ]
    if stream.class_names:
        names = stream.class_names[:MAX_CLASS_NAMES]
        more = len(stream.class_names) - len(names)
        lines.append(f"class names:   {', '.join(names)}" + (f", … (+{more} more)" if more > 0 else ""))
    lines.append(f"normalization: {stream.normalization}")
    return "\n".join(lines)
