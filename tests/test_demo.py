"""The demo chains every stage end to end; here on its own data (digits at 16 px) with a tiny
budget. Whether it proves the method at its real budget is benchmarks/bench_demo.py's job."""

import json
import shlex

import numpy as np
import pytest

from infomax.cli import main
from infomax.demo import BUDGETS, DEFAULT_DATA, DEFAULT_MINUTES, DEFAULT_STEPS, demo_budget, demo_settings
from infomax.embed.files import load_embeddings


def test_demo_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INFOMAX_HOME", str(tmp_path / "home"))
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "6", "--minutes", "5", "--device", "cpu", "--seed", "1"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    # the last lines: the folder, then the command that serves the demo's own index
    serve = shlex.split(printed[-1])
    assert printed[-3] == str(out.resolve())
    assert serve[:2] == ["infomax", "serve"]
    assert serve[serve.index("--index") + 1] == str(out / "index")
    assert serve[serve.index("--checkpoint") + 1] == str(out / "run")
    for name in ("report.md", "eval.json", "eval.md", "grid.png", "map.png", "run/loss.png",
                 "embeddings/embeddings/part-00000.npy", "index/index.json"):
        assert (out / name).is_file(), name

    config = json.loads((out / "run" / "config.json").read_text())
    assert config["data"]["spec"] == DEFAULT_DATA and config["data"]["image_shape"] == [1, 16, 16]
    assert config["train"]["run"]["seed"] == 1 and config["train"]["optim"]["max_steps"] == 6
    assert config["train"]["data"]["augment"] == demo_settings(DEFAULT_DATA)["augment"]

    report = json.loads((out / "eval.json").read_text())
    results = report["results"]
    assert set(results) == {"y", "pixels", "pca256"}  # one learned feature, scored with every protocol
    # the margins are μ's score minus the better baseline's, protocol by protocol
    for key, margin in report["margins"]["y"].items():
        best = max(results["pixels"][key], results["pca256"][key])
        assert margin == pytest.approx(results["y"][key] - best), key
    assert {"knn_majority_k1", "linear_probe", "precision@10", "map@100"} <= set(report["margins"]["y"])
    text = (out / "report.md").read_text()
    assert "| y (μ) − best baseline |" in text and "infomax serve --index" in text

    # the index holds the train split's μ (the gallery the eval searched), row for row
    vectors = np.asarray(load_embeddings(out / "embeddings").vectors)
    info = json.loads((out / "index" / "index.json").read_text())
    assert info["size"] == 1437 and info["split"] == "train" and vectors.shape == (1797, 256)
    rows = np.load(out / "index" / "rows.npy")
    unit = vectors[rows].astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    assert sorted(rows.tolist()) == sorted(load_embeddings(out / "embeddings").rows("train").tolist())
    np.testing.assert_allclose(np.load(out / "index" / "vectors.npy"), unit, atol=1e-6)


def test_demo_budget_by_kind():
    """Steps and cap given win; otherwise the data kind's own budget, else the defaults."""
    fashion_steps, fashion_minutes = BUDGETS["fashion-mnist"]
    assert fashion_steps > DEFAULT_STEPS and fashion_minutes > DEFAULT_MINUTES
    assert demo_budget(DEFAULT_DATA) == (DEFAULT_STEPS, DEFAULT_MINUTES)
    assert demo_budget("fashion-mnist") == (fashion_steps, fashion_minutes)
    assert demo_budget("fashion-mnist:/data/fm,size=32") == (fashion_steps, fashion_minutes)
    assert demo_budget("fashion-mnist", steps=10) == (10, fashion_minutes)
    assert demo_budget("digits", minutes=1.5) == (DEFAULT_STEPS, 1.5)
    assert demo_budget("cifar10", steps=0, minutes=0.0) == (0, 0.0)  # a zero given is still given
