"""`infomax study global-local` end to end on the bundled digits, a few steps per variant."""

import json

from infomax.cli import main
from infomax.config import Config
from infomax.objective.loss import DIMLoss
from infomax.study.cli import GLOBAL_LOCAL
from infomax.study.runner import run_study


def test_study_trains_every_variant_and_tabulates_their_eval(tmp_path, monkeypatch):
    monkeypatch.setenv("INFOMAX_HOME", str(tmp_path / "home"))
    out = tmp_path / "study"
    argv = ["study", "global-local", "--data", "digits,size=16", "--out", str(out), "--steps", "2",
            "--probe-epochs", "1"]
    assert main(argv) == 0

    def table_rows():
        return {line.split(" | ")[0].lstrip("| "): line for line in (out / "table.md").read_text().splitlines()
                if line.startswith("| ") and not line.startswith("| variant")}

    rows = table_rows()
    assert set(rows) == set(GLOBAL_LOCAL)
    for name in GLOBAL_LOCAL:
        run = out / name / "seed0"
        train = Config.from_dict(json.loads((run / "config.json").read_text())["train"]).to_flat()
        want = {"global-only": ("beta", 0.0), "local-only": ("alpha", 0.0), "no-prior": ("gamma", 0.0),
                "both": ("beta", 1.5), "both-fp32": ("precision", "fp32")}[name]
        assert train[want[0]] == want[1] and train["max_steps"] == 2
        knn = json.loads((run / "embeddings" / "eval.json").read_text())["results"]["y"]["knn_weighted_k200"]
        assert f"| 2 | {100 * knn:.2f} |" in rows[name]
    assert (out / "grids.png").is_file()
    # a second call, for one variant, reuses its finished run instead of training again and
    # still tabulates every variant finished in the folder
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/seed0/checkpoints/latest.json")}
    assert len(stamps) == len(GLOBAL_LOCAL)
    assert main(argv + ["--variants", "both"]) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/seed0/checkpoints/latest.json")}
    assert table_rows() == rows


def test_a_diverging_variant_is_reported_and_the_study_goes_on(tmp_path, monkeypatch):
    monkeypatch.setenv("INFOMAX_HOME", str(tmp_path / "home"))
    real = DIMLoss.forward

    def blows_up_with_hellinger(self, *args, **kwargs):
        loss, terms = real(self, *args, **kwargs)
        if self.cfg.estimator == "hellinger":
            terms["global"] = terms["global"] * float("inf")
            loss = self.total(terms)
        return loss, terms

    monkeypatch.setattr(DIMLoss, "forward", blows_up_with_hellinger)
    variants = {"unstable": ("squared Hellinger", {"preset": "seed", "estimator": "hellinger"}),
                "plain": ("the seed", {"preset": "seed"})}
    out = tmp_path / "study"

    def study():
        return run_study(variants, data="digits,size=16", out=out, minutes=None, steps=2, seeds=[0],
                         precision="fp32", title="t").read_text()

    text = study()
    failed = out / "unstable" / "seed0" / "failed.txt"
    assert "the loss became inf at step 1 (term: global)" in failed.read_text()
    rows = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ")]
    assert rows == ["| variant", "| plain"]
    assert "- unstable seed 0 (squared Hellinger): the loss became inf at step 1 (term: global)" in text
    assert not (out / "unstable" / "seed0" / "embeddings").exists()
    # a second call keeps the recorded failure instead of training the variant again
    stamp = failed.stat().st_mtime_ns
    assert study() == text and failed.stat().st_mtime_ns == stamp
