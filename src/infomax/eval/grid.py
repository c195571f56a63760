"""Nearest-neighbour grids: each row is a query image followed by its nearest gallery images.

Images come either as decoded pixels (uint8 C×H×W arrays), drawn exactly as stored and enlarged
by an integer factor with nearest-neighbour repetition, or as pictures (uint8 H×W×3 of any size,
e.g. photos from their source files, infomax.data.pictures), drawn as given, each centred in a
cell as large as the largest picture. With labels, each neighbour gets a thin green frame when it has
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
PICTURE_PIXELS = 128  # the cell of a grid of pictures made from source files


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
    """One set of neighbour columns: a title and images (Q×k×C×H×W, or Q lists of k H×W×3 pictures)
    with optional match flags (bool Q×k)."""

    title: str
    images: np.ndarray | list
    same_class: np.ndarray | None = None


def upscale_factor(height: int, target: int = TARGET_PIXELS) -> int:
    return max(1, int(round(target / max(height, 1))))


def _tile(pixels: np.ndarray, cell: tuple[int, int], frame: tuple[int, int, int]) -> np.ndarray:
    """uint8 H×W×3 -> a cell_h×cell_w×3 cell: the pixels, untouched, centred, in a coloured frame."""
    h, w = pixels.shape[:2]
    tile = np.empty((*cell, 3), dtype=np.uint8)
    tile[:] = BACKGROUND
    y, x = (cell[0] - h - 2 * FRAME) // 2, (cell[1] - w - 2 * FRAME) // 2
    tile[y : y + h + 2 * FRAME, x : x + w + 2 * FRAME] = frame
    tile[y + FRAME : y + FRAME + h, x + FRAME : x + FRAME + w] = pixels
    return tile


def _pictures(images, scale: int | None) -> list:
    """C×H×W arrays (any leading shape) -> nested lists of H×W×3, enlarged by `scale`; pictures as given."""
    if isinstance(images, np.ndarray) and images.ndim >= 4 and images.shape[-3] in (1, 3):
        factor = scale or upscale_factor(images.shape[-2])
        if images.ndim > 4:
            return [_pictures(i, factor) for i in images]
        return [rgb(i).repeat(factor, axis=0).repeat(factor, axis=1) for i in images]
    return [_pictures(i, scale) if isinstance(i, list) else i for i in images]


def draw_grid(queries, blocks: list[Block], row_labels: list[str] | None = None, scale: int | None = None):
    """A PIL image: per row a label, the query and each block's neighbours.

    queries: uint8 Q×C×H×W (drawn enlarged by `scale`, default upscale_factor(H)) or Q pictures
    (uint8 H×W×3, drawn as given); blocks' images likewise.
    """
    from PIL import Image, ImageDraw, ImageFont

    query_tiles = _pictures(queries, scale)
    block_tiles = [_pictures(b.images, scale) for b in blocks]
    every = query_tiles + [t for tiles in block_tiles for row in tiles for t in row]
    cell_h = max(t.shape[0] for t in every) + 2 * FRAME
    cell_w = max(t.shape[1] for t in every) + 2 * FRAME
    q = len(query_tiles)
    font = ImageFont.load_default(size=max(11, min(16, cell_h // 5)))
    label_w = 0
    if row_labels:
        label_w = int(max(font.getlength(t) for t in row_labels)) + 2 * GAP
    header_h = font.size + 2 * GAP
    block_w = [len(tiles[0]) * (cell_w + GAP) if tiles else 0 for tiles in block_tiles]
    width = label_w + cell_w + 3 * GAP + sum(block_w) + 2 * GAP * (len(blocks) - 1) + GAP
    height = header_h + q * (cell_h + GAP) + GAP
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    texts = [((label_w, GAP), "query")]
    for r in range(q):
        y = header_h + r * (cell_h + GAP)
        x = label_w
        canvas[y : y + cell_h, x : x + cell_w] = _tile(query_tiles[r], (cell_h, cell_w), QUERY_FRAME)
        x += cell_w + 3 * GAP
        for b, tiles, bw in zip(blocks, block_tiles, block_w):
            if r == 0:
                texts.append(((x, GAP), b.title))
            for c, pixels in enumerate(tiles[r]):
                frame = PLAIN if b.same_class is None else SAME if b.same_class[r, c] else OTHER
                canvas[y : y + cell_h, x : x + cell_w] = _tile(pixels, (cell_h, cell_w), frame)
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
