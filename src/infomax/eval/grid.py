"""Nearest-neighbour grids: each row is a query image followed by its nearest gallery images.

Pixels are drawn exactly as stored (uint8, no rescaling), enlarged by an integer factor with
nearest-neighbour repetition. With labels, each neighbour gets a thin green frame when it has
the query's class and a red one when not, and the row shows the query's class name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infomax.atomic import atomic_write
from infomax.eval.knn import topk_neighbours
from infomax.eval.plot import rgb

SAME, OTHER, PLAIN = (0, 170, 0), (220, 0, 0), (255, 255, 255)
QUERY_FRAME = (60, 60, 60)
BACKGROUND = (255, 255, 255)
FRAME, GAP, TARGET_PIXELS = 2, 4, 96


def select_queries(candidates: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Pure: n rows drawn from `candidates` with a fixed seed.

    The same (candidates, seed) always give the same order, and a smaller n gives a prefix of a
    larger one, so several grids (or a study) can show the same queries.
    """
    candidates = np.asarray(candidates)
    order = np.random.default_rng(seed).permutation(len(candidates))
    return candidates[order[: max(0, n)]]


def grid_neighbours(
    vectors: np.ndarray,
    gallery_rows: np.ndarray,
    query_vectors: np.ndarray,
    query_rows: np.ndarray | None = None,
    k: int = 9,
    metric: str = "cosine",
) -> np.ndarray:
    """Embedding rows (int64 Q×k) of the k nearest gallery images of each query, nearest first.

    vectors: N×D all embeddings; gallery_rows: the rows searched; query_vectors: Q×D;
    query_rows: each query's own row (-1 for an outside image). A query never finds itself.
    """
    gallery_rows = np.asarray(gallery_rows, dtype=np.int64)
    exclude = None
    if query_rows is not None:
        where = np.full(len(vectors), -1, dtype=np.int64)
        where[gallery_rows] = np.arange(len(gallery_rows))
        query_rows = np.asarray(query_rows, dtype=np.int64)
        exclude = np.where(query_rows >= 0, where[np.maximum(query_rows, 0)], -1)
    _, pos = topk_neighbours(query_vectors, vectors[gallery_rows], k, metric=metric, exclude=exclude)
    return gallery_rows[pos]


@dataclass
class Block:
    """One set of neighbour columns: a title and images (Q×k×C×H×W) with optional match flags (bool Q×k)."""

    title: str
    images: np.ndarray
    same_class: np.ndarray | None = None


def upscale_factor(height: int, target: int = TARGET_PIXELS) -> int:
    return max(1, int(round(target / max(height, 1))))


def _tile(image: np.ndarray, scale: int, frame: tuple[int, int, int]) -> np.ndarray:
    """uint8 C×H×W -> (H*s+2F)×(W*s+2F)×3 with a coloured frame; pixel values untouched."""
    pixels = rgb(image).repeat(scale, axis=0).repeat(scale, axis=1)
    h, w = pixels.shape[:2]
    tile = np.empty((h + 2 * FRAME, w + 2 * FRAME, 3), dtype=np.uint8)
    tile[:] = frame
    tile[FRAME : FRAME + h, FRAME : FRAME + w] = pixels
    return tile


def draw_grid(queries: np.ndarray, blocks: list[Block], row_labels: list[str] | None = None, scale: int | None = None):
    """A PIL image: per row a label, the query (Q×C×H×W) and each block's neighbours."""
    from PIL import Image, ImageDraw, ImageFont

    q, _, h, w = queries.shape
    scale = scale or upscale_factor(h)
    cell_h, cell_w = h * scale + 2 * FRAME, w * scale + 2 * FRAME
    font = ImageFont.load_default(size=max(11, min(16, cell_h // 5)))
    label_w = 0
    if row_labels:
        label_w = int(max(font.getlength(t) for t in row_labels)) + 2 * GAP
    header_h = font.size + 2 * GAP
    block_w = [b.images.shape[1] * (cell_w + GAP) for b in blocks]
    width = label_w + cell_w + 3 * GAP + sum(block_w) + 2 * GAP * (len(blocks) - 1) + GAP
    height = header_h + q * (cell_h + GAP) + GAP
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    texts = [((label_w, GAP), "query")]
    for r in range(q):
        y = header_h + r * (cell_h + GAP)
        x = label_w
        canvas[y : y + cell_h, x : x + cell_w] = _tile(queries[r], scale, QUERY_FRAME)
        x += cell_w + 3 * GAP
        for b, bw in zip(blocks, block_w):
            if r == 0:
                texts.append(((x, GAP), b.title))
            for c in range(b.images.shape[1]):
                frame = PLAIN if b.same_class is None else SAME if b.same_class[r, c] else OTHER
                canvas[y : y + cell_h, x : x + cell_w] = _tile(b.images[r, c], scale, frame)
                x += cell_w + GAP
            x += 2 * GAP
        if row_labels:
            texts.append(((GAP, y + cell_h // 2 - font.size // 2), row_labels[r]))
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for xy, text in texts:
        draw.text(xy, text, fill=(0, 0, 0), font=font)
    return image


def save_png(image, path: str | Path) -> Path:
    """Write a PIL image as PNG atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
