"""Data sets from images already in memory: uint8 arrays or tensors, PIL images, torch Datasets."""

from __future__ import annotations

import numpy as np

from infomax.data.dataset import NORMALIZATIONS, Dataset, Split
from infomax.errors import InfomaxError


def as_array(image) -> np.ndarray:
    """One image (PIL, array or tensor; C×H×W, H×W×C or H×W) -> uint8 array as given."""
    if type(image).__module__.startswith("PIL."):
        return np.asarray(image.convert("L" if image.mode in ("L", "1", "I", "F") else "RGB"))
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    return np.asarray(image)


def to_nchw(array: np.ndarray) -> np.ndarray:
    """uint8 N×C×H×W from N×C×H×W, N×H×W×C (C = 1 or 3) or N×H×W."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise InfomaxError(f"images must be uint8 pixels 0..255, got dtype {array.dtype}; "
                           "convert with (x * 255).round().clip(0, 255).astype('uint8') for floats in [0, 1]")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4:
        raise InfomaxError(f"images must be N×C×H×W, N×H×W×C or N×H×W, got shape {array.shape}")
    if array.shape[1] not in (1, 3) and array.shape[3] in (1, 3):
        array = array.transpose(0, 3, 1, 2)
    if array.shape[1] not in (1, 3):
        raise InfomaxError(f"images must have 1 or 3 channels, got shape {array.shape}")
    return np.ascontiguousarray(array)


def as_dataset(source, *, labels=None, normalization: str = "center") -> Dataset:
    """A one-split ("train") data set of images in memory; ids are the row numbers."""
    if normalization not in NORMALIZATIONS:
        raise InfomaxError(f"normalization {normalization!r} is not one of: {', '.join(NORMALIZATIONS)}")
    if isinstance(source, Dataset):
        return source
    if hasattr(source, "__getitem__") and hasattr(source, "__len__") and not hasattr(source, "shape") \
            and not isinstance(source, (list, tuple)):
        source = [source[i] for i in range(len(source))]  # a torch Dataset: images or (image, label)
    if isinstance(source, (list, tuple)):
        if not source:
            raise InfomaxError("no images given")
        if isinstance(source[0], tuple):
            source, labels = [s[0] for s in source], [int(s[1]) for s in source]
        shapes = {as_array(s).shape for s in source}
        if len(shapes) > 1:
            raise InfomaxError(f"the images differ in shape ({sorted(shapes)[:3]}...); resize them to one size, "
                               "or save them to a folder and use load_data('folder:PATH,size=N')")
        source = np.stack([as_array(s) for s in source])
    images = to_nchw(as_array(source))
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (len(images),):
            raise InfomaxError(f"{len(labels)} labels for {len(images)} images; give one label per image")
    split = Split(images, labels, [str(i) for i in range(len(images))])
    return Dataset(kind="memory", path="", splits={"train": split}, normalization=normalization,
                   options={"norm": normalization})
