"""`infomax demo`: the whole pipeline on offline data, into one folder.

train (time-boxed) → embed → eval against the raw-pixel baseline → grids → embedding map →
report.md. Runs on Fashion-MNIST when Debian's `dataset-fashion-mnist` is installed, else on
scikit-learn's bundled digits; `--data` names any other data set.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


def default_data() -> str:
    """The best data set available offline."""
    if (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        return "fashion-mnist"
    return "digits"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="train, embed, evaluate and draw on offline data, into one folder",
                              description=__doc__.splitlines()[0])
    p.add_argument("--data", help="data spec (default: fashion-mnist when installed, else digits)")
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--minutes", type=float, default=3.0, help="training time budget (default 3)")
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--preset", default="recommended", help="training preset (default: recommended; seed is the reference)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)
    return p


def _stage(name: str, argv: list[str]) -> float:
    from infomax.cli import main
    from infomax.errors import InfomaxError

    print(f"\n== {name}: infomax {' '.join(argv)}", flush=True)
    t = time.perf_counter()
    code = main(argv)
    if code != 0:
        raise InfomaxError(f"the demo stopped at '{name}' (exit {code}); see the message above")
    return time.perf_counter() - t


def run(args: argparse.Namespace) -> int:
    from infomax.extras import EVAL, require_all

    require_all(EVAL, "eval", "infomax demo (it evaluates and draws what it trained)")
    data = args.data or default_data()
    out = Path(args.out)
    run_dir, emb_dir = out / "run", out / "embeddings"
    seconds = {
        "train": _stage("train", ["train", "--data", data, "--out", str(run_dir), "--preset", args.preset,
                                  "--epochs", "1000", "--time-budget", str(args.minutes), "--precision", args.precision,
                                  "--device", args.device, "--no-progress", "--log-every", "50"]
                        + (["--resume"] if (run_dir / "config.json").is_file() else [])),
        "embed": _stage("embed", ["embed", "--checkpoint", str(run_dir), "--out", str(emb_dir), "--features", "y,fc",
                                  "--device", args.device, "--no-progress"]),
        "eval": _stage("eval", ["eval", "--embeddings", str(emb_dir), "--out", str(out), "--baselines", "pixels"]),
        "grid": _stage("grid", ["grid", "--embeddings", str(emb_dir), "--metric", "both", "--out", str(out / "grid.png")]),
        "plot": _stage("plot", ["plot", "--embeddings", str(emb_dir), "--out", str(out / "map.png"),
                                "--points", "2000", "--thumbnails", "40"]),
    }
    report = out / "report.md"
    report.write_text(_report(data, out, seconds))
    print(f"\nreport: {report}")
    print(out.resolve())
    return 0


def _report(data: str, out: Path, seconds: dict[str, float]) -> str:
    config = json.loads((out / "run" / "config.json").read_text())
    log = (out / "run" / "log.csv").read_text().strip().splitlines()
    steps = log[-1].split(",")[0] if len(log) > 1 else "0"
    lines = [
        f"# infomax demo on `{data}`",
        "",
        f"Trained the `{config['train']['preset']}` preset for {steps} steps "
        f"({config['train']['precision']}, batch {config['train']['batch_size']}) on the train split, "
        "then embedded every split and scored the features against raw pixels.",
        "",
        "| stage | seconds |",
        "| --- | --- |",
        *[f"| {k} | {v:.0f} |" for k, v in seconds.items()],
        "",
        (out / "eval.md").read_text() if (out / "eval.md").is_file() else "",
        "",
        "![nearest neighbours](grid.png)",
        "",
        "![embedding map](map.png)",
        "",
        "![loss curves](run/loss.png)",
        "",
    ]
    return "\n".join(lines)
