"""Small real data sets built in memory for tests."""

import numpy as np

from infomax.data.dataset import Dataset, Split


def small_digits(size: int = 16, n_train: int = 256, n_test: int = 64) -> Dataset:
    """scikit-learn's bundled 8×8 digits, upscaled to size×size, one channel, as a Dataset."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)  # N×8×8
    x = np.repeat(np.repeat(x, size // 8, axis=1), size // 8, axis=2)[:, None]  # N×1×size×size
    y = d.target.astype(np.int64)
    ids = [f"digits/{i}" for i in range(len(x))]
    splits = {
        "train": Split(x[:n_train], y[:n_train], ids[:n_train]),
        "test": Split(x[n_train : n_train + n_test], y[n_train : n_train + n_test], ids[n_train : n_train + n_test]),
    }
    return Dataset("digits", "sklearn", splits, [str(i) for i in range(10)], "center", {"size": size})
