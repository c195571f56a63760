import json
import sys

import numpy as np
import pytest

from infomax.cli import main
from tests.eval.helpers import digits_embeddings, encoder_embeddings
from tests.datasets import small_digits


@pytest.fixture
def fake_data(monkeypatch):
    """`--data` / embed.json specs resolve to the in-memory digits set."""
    import infomax.data

    monkeypatch.setattr(infomax.data, "load", lambda spec, **kw: small_digits())


def test_eval_reports_every_protocol(tmp_path, capsys):
    digits_embeddings(tmp_path / "emb")
    assert main(["eval", "--embeddings", str(tmp_path / "emb"), "--probe-epochs", "800"]) == 0  # 800 steps
    report = json.loads((tmp_path / "emb" / "eval.json").read_text())
    r = report["results"]["y"]
    assert r["kind"] == "learned"
    for key in ("knn_weighted_k200", "knn_majority_k1", "knn_majority_k10", "knn_majority_k20",
                "linear_probe", "mlp_probe", "precision@10", "map@100"):
        assert 0.5 < r[key] <= 1.0, key  # digit pixels are easy: far above the 10% of chance
    assert report["gallery"] == {"split": "train", "size": 256} and report["queries"]["size"] == 64
    assert (tmp_path / "emb" / "prior.png").is_file()
    md = (tmp_path / "emb" / "eval.md").read_text()
    assert "| y (μ) | 64 |" in md and "InstDisc" in md and "min(100, R)" in md
    assert "kNN w200" in capsys.readouterr().out


def test_eval_without_labels_keeps_the_label_free_parts(tmp_path, capsys):
    digits_embeddings(tmp_path / "emb", labelled=False)
    assert main(["eval", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert "results" not in report and report["prior"]["dims"] == 64
    assert "no label" in report["notes"][0] and "infomax grid" in report["notes"][0]
    assert (tmp_path / "out" / "prior.png").is_file()


def test_eval_with_pixel_baselines(tmp_path, fake_data):
    digits_embeddings(tmp_path / "emb")
    assert main(["eval", "--embeddings", str(tmp_path / "emb"), "--baselines", "pixels", "pca", "--probe-epochs", "5"]) == 0
    results = json.loads((tmp_path / "emb" / "eval.json").read_text())["results"]
    assert set(results) == {"y", "pixels", "pca64"} and results["pca64"]["kind"] == "baseline"
    assert results["pixels"]["dims"] == 256 and results["pixels"]["knn_majority_k1"] > 0.8
    assert "| baseline: pixels | 256 |" in (tmp_path / "emb" / "eval.md").read_text()


def test_random_encoder_baseline(tmp_path, fake_data):
    encoder_embeddings(tmp_path / "emb")
    assert main(["eval", "--embeddings", str(tmp_path / "emb"), "--baselines", "random", "--probe-epochs", "2"]) == 0
    results = json.loads((tmp_path / "emb" / "eval.json").read_text())["results"]
    assert results["random_encoder"]["dims"] == 16


def test_disagreeing_files_give_one_line(tmp_path, capsys):
    digits_embeddings(tmp_path / "emb")
    np.save(tmp_path / "emb" / "embeddings" / "part-00003.npy", np.zeros((7, 64), np.float32))  # was 20 rows
    assert main(["eval", "--embeddings", str(tmp_path / "emb")]) == 2
    err = capsys.readouterr().err
    assert "307 embeddings but 320 metadata rows" in err and "Traceback" not in err


def test_grid_command(tmp_path, fake_data, capsys):
    digits_embeddings(tmp_path / "emb")
    out = tmp_path / "grid.png"
    assert main(["grid", "--embeddings", str(tmp_path / "emb"), "--out", str(out), "--queries", "4", "--metric", "both"]) == 0
    from PIL import Image

    width, height = Image.open(out).size
    assert width > 19 * 32 and height > 4 * 32
    assert main(["grid", "--embeddings", str(tmp_path / "emb"), "--out", str(out), "--query-ids", "nope"]) == 2
    assert "no image with id nope" in capsys.readouterr().err


def test_grid_refuses_other_data(tmp_path, monkeypatch, capsys):
    import infomax.data

    digits_embeddings(tmp_path / "emb")
    monkeypatch.setattr(infomax.data, "load", lambda spec, **kw: small_digits(n_train=200))
    assert main(["grid", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "g.png")]) == 2
    assert "200 images" in capsys.readouterr().err


def test_grid_with_query_files_and_a_bad_file(tmp_path, fake_data, capsys):
    from PIL import Image

    emb, data = encoder_embeddings(tmp_path / "emb")
    good = tmp_path / "q.png"
    Image.fromarray(data.splits["test"].images[0, 0]).save(good)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    args = ["grid", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "g.png"), "--query-images"]
    assert main(args + [str(good)]) == 0
    assert main(args + [str(bad)]) == 2
    assert "bad.jpg" in capsys.readouterr().err


def test_plot_falls_back_to_tsne_with_a_note(tmp_path, fake_data, monkeypatch, capsys):
    digits_embeddings(tmp_path / "emb")
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap now fails
    out = tmp_path / "map.png"
    assert main(["plot", "--embeddings", str(tmp_path / "emb"), "--out", str(out), "--points", "120", "--thumbnails", "5"]) == 0
    assert "t-SNE was used" in capsys.readouterr().out and out.stat().st_size > 10_000
