"""The embedding map: a 2-D layout of the embeddings (UMAP, or t-SNE when umap-learn is absent),
coloured by class when labels are known, optionally with thumbnails of some images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infomax.atomic import atomic_write
from infomax.errors import InfomaxError
from infomax.extras import require

METHODS = ("auto", "umap", "tsne")
THUMB_PIXELS = 64  # the longest side of a thumbnail's pixels (drawn at about 32 points)


def save_figure(fig, path: str | Path, dpi: int = 150) -> Path:
    """Save a matplotlib figure as PNG atomically (temp file + rename) and close it."""
    plt = require("matplotlib.pyplot", "eval", "drawing figures")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    finally:
        plt.close(fig)
    return path


def subsample(n_total: int, n: int, seed: int = 0) -> np.ndarray:
    """Pure: sorted row numbers of a seeded random sample of min(n, n_total) rows."""
    if n <= 0 or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, size=n, replace=False))


def layout_2d(vectors: np.ndarray, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, str, str | None]:
    """2-D coordinates (N×2) of the vectors with cosine distances.

    Returns (points, method used, note); the note explains a fallback from UMAP to t-SNE.
    """
    if method not in METHODS:
        raise InfomaxError(f"unknown map method '{method}'; use one of {', '.join(METHODS)}")
    x = np.array(vectors, dtype=np.float32, copy=True)
    if len(x) < 5:
        raise InfomaxError(f"a map needs at least 5 points, got {len(x)}")
    note = None
    if method in ("auto", "umap"):
        try:
            import umap
        except ImportError:
            if method == "umap":
                raise InfomaxError("umap-learn is not installed; `pip install 'infomax[plot]'` or use --method tsne")
            note = "umap-learn is not installed (pip install 'infomax[plot]'), so t-SNE was used instead"
        else:
            reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_neighbors=min(15, len(x) - 1))
            return reducer.fit_transform(x).astype(np.float32), "umap", None
    TSNE = require("sklearn.manifold", "eval", "a t-SNE map").TSNE

    perplexity = float(min(30, (len(x) - 1) / 3))
    method = "exact" if len(x) <= 500 else "barnes_hut"  # Barnes-Hut is very slow on a few hundred points
    tsne = TSNE(n_components=2, metric="cosine", init="pca", random_state=seed, perplexity=perplexity, method=method)
    return tsne.fit_transform(x).astype(np.float32), "tsne", note


def rgb(image: np.ndarray) -> np.ndarray:
    """uint8 C×H×W (C = 1 or 3) -> uint8 H×W×3, pixel values untouched."""
    pixels = np.asarray(image, dtype=np.uint8).transpose(1, 2, 0)
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels[:, :, :3]


def class_colours(labels: np.ndarray, num_classes: int):
    """One RGBA colour per point from its class (tab10 / tab20 / a continuous map for many classes)."""
    matplotlib = require("matplotlib", "eval", "drawing the embedding map")

    name = "tab10" if num_classes <= 10 else "tab20" if num_classes <= 20 else "turbo"
    cmap = matplotlib.colormaps[name]
    if num_classes <= 20:
        return cmap(np.asarray(labels) % cmap.N)
    return cmap(np.asarray(labels) / max(num_classes - 1, 1))


def draw_map(
    points: np.ndarray,
    path: str | Path,
    labels: np.ndarray | None = None,
    class_names: list[str] | None = None,
    thumbnails: tuple[np.ndarray, np.ndarray] | None = None,
    title: str = "",
) -> Path:
    """Scatter the points (N×2); labels (int N) colour them, with a legend up to 20 classes.

    thumbnails: (positions into points, T pictures: uint8 H×W×3 as made by infomax.data.pictures)
    drawn at those points, about 32 points on their longer side.
    """
    require("matplotlib", "eval", "drawing the embedding map").use("Agg")
    plt = require("matplotlib.pyplot", "eval", "drawing the embedding map")
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    fig, ax = plt.subplots(figsize=(10, 10))
    size = max(1.0, min(12.0, 20000 / max(len(points), 1)))
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=size, color="tab:blue", alpha=0.6, linewidths=0)
    else:
        num_classes = int(labels.max()) + 1 if class_names is None else len(class_names)
        ax.scatter(points[:, 0], points[:, 1], s=size, c=class_colours(labels, num_classes), alpha=0.7, linewidths=0)
        if num_classes <= 20:
            colours = class_colours(np.arange(num_classes), num_classes)
            for c in np.unique(labels):
                name = class_names[c] if class_names and c < len(class_names) else str(c)
                ax.scatter([], [], s=30, color=colours[c], label=name)
            ax.legend(loc="best", fontsize=8, markerscale=1.0, framealpha=0.8)
    if thumbnails is not None:
        positions, pictures = thumbnails
        for pos, pixels in zip(positions, pictures):
            box = OffsetImage(pixels, zoom=32.0 / max(pixels.shape[:2]), interpolation="antialiased")
            ax.add_artist(AnnotationBbox(box, points[pos], frameon=True, pad=0.1))
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)
