"""The demo chains every stage end to end; here on the bundled digits with a tiny budget."""

import json

from infomax.cli import main


def test_demo_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INFOMAX_HOME", str(tmp_path / "home"))
    out = tmp_path / "demo"
    assert main(["demo", "--data", "digits,size=16", "--out", str(out), "--minutes", "0.05", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1] == str(out.resolve())
    for name in ("report.md", "eval.json", "eval.md", "grid.png", "map.png", "run/loss.png", "embeddings/embeddings/part-00000.npy"):
        assert (out / name).is_file(), name
    report = json.loads((out / "eval.json").read_text())
    text = json.dumps(report)
    assert "pixels" in text and "knn" in text.lower()
