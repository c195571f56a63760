import numpy as np
import pytest

from infomax.eval.retrieval import average_precision_at_k, precision_at_k, retrieval_metrics


def test_precision_at_k_by_hand():
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 1]], bool)
    assert precision_at_k(rel, 2) == pytest.approx((0.5 + 0.0) / 2)
    assert precision_at_k(rel, 4) == pytest.approx((0.5 + 0.25) / 2)


def test_average_precision_by_hand():
    rel = np.array([
        [1, 0, 1, 0],  # R = 2: (1/1 + 2/3) / 2
        [1, 0, 1, 0],  # R = 10 > k: (1/1 + 2/3) / min(4, 10)
        [0, 0, 0, 0],  # nothing found
        [0, 1, 0, 0],  # R = 1: (1/2) / 1
        [1, 1, 1, 1],  # perfect
    ], bool)
    ap = average_precision_at_k(rel, np.array([2, 10, 3, 1, 50]), k=4)
    np.testing.assert_allclose(ap, [(1 + 2 / 3) / 2, (1 + 2 / 3) / 4, 0.0, 0.5, 1.0])
    assert average_precision_at_k(rel[:1], np.array([0]), k=4).tolist() == [0.0]


def test_retrieval_metrics_from_labels():
    neighbour_labels = np.array([[0, 1, 0], [1, 1, 1]])
    query_labels = np.array([0, 1])
    gallery_labels = np.array([0, 0, 1, 1, 1, 1])  # class 0: 2 items, class 1: 4 items
    out = retrieval_metrics(neighbour_labels, query_labels, gallery_labels, precision_k=3, map_k=3)
    assert out["precision@3"] == pytest.approx((2 / 3 + 1) / 2)
    # query 0: R = 2, (1 + 2/3) / 2; query 1: (1 + 1 + 1) / 3
    assert out["map@3"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
