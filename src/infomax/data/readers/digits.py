"""scikit-learn's bundled 8×8 digits (always offline): 1,797 grayscale images of 10 classes.

Pixels 0..16 are scaled to 0..255 and upscaled to size×size (default 32, the model's input
size); a fixed stratified 80/20 split (seed 0) gives train and test.
"""

from __future__ import annotations

import numpy as np

from infomax.data.arrays import adapt
from infomax.data.dataset import Dataset, Split

DEFAULT_SIZE = 32
TEST_FRACTION = 0.2
SEED = 0


def read(kind: str, path, options: dict, *, progress: bool = True, store=None) -> Dataset:
    """Read the digits (options: size, mode, resize); 1,797 images, kept in memory (`store` unused)."""
    from infomax.extras import require

    load_digits = require("sklearn.datasets", "eval", "the digits data set").load_digits
    train_test_split = require("sklearn.model_selection", "eval", "the digits data set").train_test_split

    digits = load_digits()
    pixels = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # N×1×8×8
    labels = digits.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels, random_state=SEED)
    size = options.get("size", DEFAULT_SIZE)
    images = adapt(pixels, size=size, mode=options.get("mode"), resize=options.get("resize", "shorter-crop"))
    splits = {
        name: Split(images[rows], labels[rows], [f"digits#{i}" for i in rows])
        for name, rows in (("train", np.sort(train)), ("test", np.sort(test)))
    }
    resolved = dict(options, size=size, mode="L" if images.shape[1] == 1 else "RGB")
    return Dataset(kind, "sklearn.datasets.load_digits", splits, [str(i) for i in range(10)], options=resolved)
