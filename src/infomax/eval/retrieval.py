"""Retrieval quality of same-class neighbours: precision@k and mAP@k.

A gallery item is relevant to a query when it has the query's class. Neighbours are ranked
by cosine similarity (see `knn.topk_neighbours`).

- precision@k: the fraction of the k nearest neighbours that are relevant, averaged over queries.
- AP@k (the definition used here): AP@k = (1 / min(k, R)) * sum_{i=1..k} P@i * rel_i, where
  rel_i is 1 when the i-th neighbour is relevant, P@i is the precision of the first i, and R is
  the number of relevant items in the whole gallery (the size of the query's class there).
  It is 1 only when the first min(k, R) neighbours are all relevant; a query with R = 0 scores 0.
  mAP@k is the mean of AP@k over all queries.
"""

from __future__ import annotations

import numpy as np


def relevance(neighbour_labels: np.ndarray, query_labels: np.ndarray) -> np.ndarray:
    """bool Q×K: neighbour j of query i has the query's class."""
    return np.asarray(neighbour_labels) == np.asarray(query_labels)[:, None]


def precision_at_k(relevant: np.ndarray, k: int = 10) -> float:
    """Mean over queries of the relevant fraction among the first k neighbours (relevant: bool Q×K, K ≥ k)."""
    if relevant.shape[1] < k:
        raise ValueError(f"precision@{k} needs {k} neighbours per query, got {relevant.shape[1]}")
    return float(relevant[:, :k].mean()) if len(relevant) else float("nan")


def average_precision_at_k(relevant: np.ndarray, num_relevant: np.ndarray, k: int = 100) -> np.ndarray:
    """AP@k per query (float64 Q), normalized by min(k, R); see the module docstring.

    relevant: bool Q×K (K ≥ k, nearest first); num_relevant: int Q, relevant items in the gallery.
    """
    if relevant.shape[1] < k:
        raise ValueError(f"AP@{k} needs {k} neighbours per query, got {relevant.shape[1]}")
    rel = relevant[:, :k].astype(np.float64)  # Q×k
    precision_at_i = np.cumsum(rel, axis=1) / np.arange(1, k + 1)  # Q×k
    denom = np.minimum(k, np.asarray(num_relevant)).astype(np.float64)  # Q
    total = (precision_at_i * rel).sum(axis=1)
    return np.divide(total, denom, out=np.zeros_like(total), where=denom > 0)


def retrieval_metrics(
    neighbour_labels: np.ndarray,
    query_labels: np.ndarray,
    gallery_labels: np.ndarray,
    precision_k: int = 10,
    map_k: int = 100,
) -> dict[str, float]:
    """precision@k and mAP@k from neighbour labels (int Q×K, nearest first, K ≥ both k).

    Keys: 'precision@{precision_k}', 'map@{map_k}'.
    """
    relevant = relevance(neighbour_labels, query_labels)
    query_labels = np.asarray(query_labels, dtype=np.int64)
    size = int(max(np.max(gallery_labels, initial=-1), np.max(query_labels, initial=-1))) + 1
    class_sizes = np.bincount(np.asarray(gallery_labels, dtype=np.int64), minlength=size)  # C
    num_relevant = class_sizes[query_labels]  # Q
    return {
        f"precision@{precision_k}": precision_at_k(relevant, precision_k),
        f"map@{map_k}": float(average_precision_at_k(relevant, num_relevant, map_k).mean()),
    }
