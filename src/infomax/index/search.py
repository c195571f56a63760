"""Searching a gallery index: by image files (encoded with a checkpoint) or by gallery position."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from infomax.errors import InfomaxError
from infomax.index.store import GalleryIndex


def search_rows(index: GalleryIndex, rows: list[int], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Neighbours of gallery vectors themselves (positions), the query itself left out: Q×k scores and positions."""
    rows = [int(r) for r in rows]
    k = min(int(k), len(index))  # the outputs are Q×k: never wider than the gallery
    queries = np.stack([index.vector(r) for r in rows])  # Q×D
    scores, pos = index.search(queries, min(k + 1, len(index)))
    out_scores = np.full((len(rows), k), -np.inf, dtype=np.float32)
    out_pos = np.full((len(rows), k), -1, dtype=np.int64)
    for i, r in enumerate(rows):  # a handful of queries: drop each one's own position
        keep = pos[i] != r
        kept_pos, kept_scores = pos[i][keep][:k], scores[i][keep][:k]
        out_pos[i, : len(kept_pos)], out_scores[i, : len(kept_pos)] = kept_pos, kept_scores
    return out_scores, out_pos


def encode_files(paths: list[str], checkpoint: str | Path, dim: int) -> np.ndarray:
    """float32 Q×D features of image files with the checkpoint's encoder (μ)."""
    from infomax.embed.embedder import Embedder

    embedder = Embedder.from_checkpoint(checkpoint)
    vectors = embedder.embed_files(list(paths))  # decoding errors name the file
    if vectors.shape[1] != dim:
        raise InfomaxError(f"checkpoint {checkpoint} makes {vectors.shape[1]}-dim features but the index holds "
                           f"{dim}-dim vectors; pass the --checkpoint whose embeddings were indexed")
    return vectors


def results(index: GalleryIndex, queries: list[str], scores: np.ndarray, positions: np.ndarray) -> list[dict]:
    """JSON-ready results: per query its neighbours with rank, gallery row, id, class name and score."""
    out = []
    for query, row_scores, row_pos in zip(queries, scores, positions):
        found = row_pos[row_pos >= 0]
        meta = index.describe(found)  # only the rows found are read
        names, ids = meta["label_name"].fillna("").astype(str).tolist(), meta["id"].astype(str).tolist()
        neighbours = [
            {"rank": rank, "row": int(p), "id": ids[i], "label_name": names[i], "score": round(float(s), 6)}
            for i, (rank, s, p) in enumerate((r, s, p) for r, (s, p) in enumerate(zip(row_scores, row_pos), 1) if p >= 0)
        ]
        out.append({"query": query, "neighbours": neighbours})
    return out


def format_text(found: list[dict]) -> str:
    """A plain table per query: rank, cosine score, gallery row, id (and class name when known)."""
    lines = []
    for entry in found:
        lines.append(f"query {entry['query']}:")
        for n in entry["neighbours"]:
            name = f"  [{n['label_name']}]" if n["label_name"] else ""
            lines.append(f"  {n['rank']:>3}  {n['score']:.4f}  row {n['row']:<8} {n['id']}{name}")
    return "\n".join(lines)
