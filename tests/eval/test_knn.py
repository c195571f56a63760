import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infomax.errors import InfomaxError
from infomax.eval.knn import knn_accuracies, majority_knn_predict, topk_neighbours, weighted_knn_predict


def test_neighbours_of_hand_made_points():
    gallery = np.array([[1, 0], [0, 1], [-1, 0], [0.9, 0.1]], np.float32)
    queries = np.array([[1, 0.05], [0, -1]], np.float32)
    scores, idx = topk_neighbours(queries, gallery, 2)
    assert idx[0].tolist() == [0, 3]
    assert idx[1][0] in (0, 2)  # orthogonal to 0 and 2, opposite to 1
    assert 1 not in idx[1]
    np.testing.assert_allclose(scores[0, 0], 1 / np.sqrt(1 + 0.05**2), rtol=1e-5)
    far = (gallery * [[1], [1], [1], [20]]).astype(np.float32)  # point 3 becomes (18, 2)
    query = np.array([[18.0, 0]], np.float32)
    assert topk_neighbours(query, far, 1, metric="l2")[1].tolist() == [[3]]  # distance 2
    assert topk_neighbours(query, far, 1, metric="cosine")[1].tolist() == [[0]]  # same direction
    np.testing.assert_allclose(topk_neighbours(query, far, 1, metric="l2")[0], [[-4.0]], rtol=1e-5)


def test_matches_brute_force_in_float64_and_excludes_self():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    q_rows = np.arange(0, 300, 7)
    exclude = q_rows.copy()
    scores, idx = topk_neighbours(x[q_rows], x, 5, exclude=exclude, batch_size=16)
    unit = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    sims = unit[q_rows] @ unit.T
    sims[np.arange(len(q_rows)), q_rows] = -np.inf
    ref = np.argsort(-sims, axis=1)[:, :5]
    np.testing.assert_array_equal(idx, ref)
    np.testing.assert_allclose(scores, np.take_along_axis(sims, ref, 1), atol=1e-5)
    assert not (idx == q_rows[:, None]).any()


def test_too_many_neighbours_is_a_clear_error():
    with pytest.raises(InfomaxError, match="gallery offers 3"):
        topk_neighbours(np.ones((1, 2), np.float32), np.ones((3, 2), np.float32), 4)


def reference_weighted_vote(sims, labels, num_classes, t):
    preds = []
    for row_s, row_l in zip(sims, labels):  # a plain float64 loop
        score = [0.0] * num_classes
        for s, l in zip(row_s, row_l):
            score[int(l)] += float(np.exp(np.float64(s) / t))
        preds.append(int(np.argmax(score)))
    return np.array(preds)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 30), st.integers(2, 5), st.integers(0, 10_000))
def test_weighted_vote_matches_float64_loop(q, k, c, seed):
    rng = np.random.default_rng(seed)
    sims = np.sort(rng.uniform(-1, 1, size=(q, k)), axis=1)[:, ::-1].astype(np.float32)
    labels = rng.integers(0, c, size=(q, k))
    np.testing.assert_array_equal(weighted_knn_predict(sims, labels, c, 0.1), reference_weighted_vote(sims, labels, c, 0.1))


def test_weighted_vote_prefers_close_neighbours():
    sims = np.array([[0.9, 0.5, 0.5, 0.5]], np.float32)
    labels = np.array([[1, 0, 0, 0]])
    # exp(9) = 8103 for class 1 against 3·exp(5) = 445 for class 0
    assert weighted_knn_predict(sims, labels, 2, 0.1).tolist() == [1]
    assert majority_knn_predict(labels, 2).tolist() == [0]


def test_majority_vote_ties_go_to_the_nearest_class():
    labels = np.array([
        [1, 0, 0, 1],  # 2-2 tie, class 1 ranks first
        [0, 1, 1, 0],  # 2-2 tie, class 0 ranks first
        [2, 0, 1, 0],  # class 0 wins outright
        [3, 2, 1, 0],  # four-way tie: the nearest, 3
    ])
    assert majority_knn_predict(labels, 4).tolist() == [1, 0, 0, 3]
    assert majority_knn_predict(labels[:, :1], 4).tolist() == [1, 0, 2, 3]


def test_knn_accuracy_on_two_clusters():
    gallery = np.array([[1, 0.1], [1, -0.1], [1, 0], [-1, 0.1], [-1, -0.1], [-1, 0]], np.float32)
    g_labels = np.array([0, 0, 0, 1, 1, 1])
    queries = np.array([[1, 0.05], [-1, 0.02], [0.9, 0.0]], np.float32)
    q_labels = np.array([0, 1, 1])  # the last one is wrong on purpose
    scores, idx = topk_neighbours(queries, gallery, 6)
    acc = knn_accuracies(scores, g_labels[idx], q_labels, 2, weighted_k=200, majority_ks=(1, 3))
    assert acc == {"knn_weighted_k200": pytest.approx(2 / 3), "knn_majority_k1": pytest.approx(2 / 3),
                   "knn_majority_k3": pytest.approx(2 / 3)}
