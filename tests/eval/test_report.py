"""The report's 'learned − best baseline' margins, against hand-computed differences."""

import pytest

from infomax.eval.report import margins, markdown


def _results():
    return {
        "y": {"kind": "learned", "dims": 4, "knn_majority_k1": 0.90, "linear_probe": 0.80, "map@100": 0.50},
        "fc": {"kind": "learned", "dims": 2, "linear_probe": 0.70},
        "pixels": {"kind": "baseline", "dims": 9, "knn_majority_k1": 0.95, "linear_probe": 0.60, "map@100": 0.40},
        "pca4": {"kind": "baseline", "dims": 4, "knn_majority_k1": 0.85, "linear_probe": 0.75, "map@100": 0.45},
    }


def test_margins_subtract_the_best_baseline_per_protocol():
    m = margins(_results())
    assert set(m) == {"y", "fc"}
    assert m["y"]["knn_majority_k1"] == pytest.approx(0.90 - 0.95)  # pixels are best here
    assert m["y"]["linear_probe"] == pytest.approx(0.80 - 0.75)  # PCA is best here
    assert m["y"]["map@100"] == pytest.approx(0.50 - 0.45)
    assert m["fc"] == {"linear_probe": pytest.approx(0.70 - 0.75)}  # only what fc was scored on
    assert margins({k: v for k, v in _results().items() if v["kind"] == "learned"}) == {}


def test_markdown_has_a_signed_margin_row():
    text = markdown({"embeddings": "e", "results": _results()})
    row = next(line for line in text.splitlines() if line.startswith("| y (μ) − best baseline"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # columns: features, dims, kNN 1, linear, mAP@100 (the protocols any set was scored on, in HEADERS order)
    assert cells[2:] == ["-5.00", "+5.00", "+5.00"]
