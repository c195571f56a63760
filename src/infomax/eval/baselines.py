"""Baseline features, evaluated with the same protocols and splits as the learned ones.

- pixels: the raw images flattened (C·H·W values), scaled as the model sees them;
- pca: PCA of those pixels to z_dim components, fitted on the gallery (train) split only;
- random encoder: the model's encoder with its initial, untrained weights (same architecture and
  normalization as the checkpoint), μ features.
"""

from __future__ import annotations

import numpy as np

from infomax.errors import InfomaxError
from infomax.extras import require

BASELINES = ("pixels", "pca", "random")


def pixel_features(images: np.ndarray, normalization: str = "center", chunk: int = 8192) -> np.ndarray:
    """float32 N×(C·H·W): uint8 images N×C×H×W as x * scale + offset of the named normalization."""
    import torch

    from infomax.data.dataset import NORMALIZATIONS
    from infomax.data.pixels import normalize_pixels

    name = normalization if normalization in NORMALIZATIONS else "center"
    n = len(images)
    out = np.empty((n, int(np.prod(images.shape[1:]))), dtype=np.float32)
    for start in range(0, n, chunk):
        block = torch.from_numpy(np.array(images[start : start + chunk], dtype=np.uint8))  # a writable copy
        out[start : start + chunk] = normalize_pixels(block, name).reshape(-1, out.shape[1]).numpy()
    return out


def pca_features(pixels: np.ndarray, fit_rows: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """float32 N×dim: PCA fitted on pixels[fit_rows] (randomized SVD, fixed seed), applied to all rows."""
    PCA = require("sklearn.decomposition", "eval", "the PCA baseline").PCA

    dim = int(min(dim, len(fit_rows), pixels.shape[1]))
    pca = PCA(n_components=dim, svd_solver="randomized", random_state=seed)
    pca.fit(pixels[fit_rows])
    return pca.transform(pixels).astype(np.float32)


def random_encoder_features(run_dir: str, images: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """float32 N×z_dim: μ of the checkpoint's architecture with untrained (initial) weights."""
    try:
        from infomax.embed.embedder import Embedder
    except ImportError as exc:
        raise InfomaxError(f"the random-encoder baseline needs infomax.embed.embedder ({exc})") from exc
    return Embedder.random_init(run_dir).embed(images, batch_size=batch_size)


def baseline_features(
    which: list[str],
    images: np.ndarray,
    gallery_rows: np.ndarray,
    z_dim: int,
    normalization: str = "center",
    run_dir: str | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Baseline features for every embedding row (images: uint8 N×C×H×W in row order).

    Returns {"pixels": N×CHW, "pca{z_dim}": N×z_dim, "random encoder": N×z_dim}, as asked in `which`.
    """
    unknown = set(which) - set(BASELINES)
    if unknown:
        raise InfomaxError(f"unknown baselines {sorted(unknown)}; choose from {', '.join(BASELINES)}")
    out: dict[str, np.ndarray] = {}
    if "pixels" in which or "pca" in which:
        pixels = pixel_features(images, normalization)
        if "pixels" in which:
            out["pixels"] = pixels
        if "pca" in which:
            out[f"pca{z_dim}"] = pca_features(pixels, gallery_rows, z_dim, seed=seed)
    if "random" in which:
        if not run_dir:
            raise InfomaxError(
                "the random-encoder baseline needs the checkpoint the embeddings came from; "
                "embed.json records none, so pass --checkpoint RUN_DIR"
            )
        out["random encoder"] = random_encoder_features(run_dir, images)
    return out
