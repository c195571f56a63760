"""Put a trained run's encoder into the package as `pretrained:NAME` (src/infomax/pretrained/NAME),
with the command that trained it and the scores `infomax eval` gave its μ, kept in its manifest.

    .venv/bin/python scripts/ship_encoder.py --run RUN --eval RUN/eval --name cifar10 \\
        --command "infomax train --data ... --out RUN --preset recommended --time-budget 60 ..."

RUN is the run folder, --eval the folder where `infomax eval --embeddings RUN/emb --out ...` wrote
eval.json (embeddings of that run's latest checkpoint). Prints the folder's size.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from infomax.checkpoint import PRETRAINED, checkpoint_ref, load_checkpoint, save_encoder
    from infomax.device import describe_machine

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, help="run folder (its latest checkpoint is shipped)")
    p.add_argument("--eval", required=True, help="folder holding eval.json of that checkpoint's embeddings")
    p.add_argument("--name", required=True, help="NAME in pretrained:NAME")
    p.add_argument("--command", required=True, help="the infomax train command that made the run")
    p.add_argument("--machine", default=describe_machine(), help="where it trained (default: this machine)")
    args = p.parse_args()
    report = json.loads((Path(args.eval) / "eval.json").read_text())
    ckpt = load_checkpoint(args.run)
    if report.get("checkpoint") not in (checkpoint_ref(args.run), checkpoint_ref(ckpt.path)):
        sys.exit(f"{args.eval}/eval.json scores embeddings of {report.get('checkpoint')}, not of {args.run}")
    scores = {k: round(report["results"]["y"][k], 4) for k in report["protocols"] if k in report["results"]["y"]}
    about = {"command": args.command, "preset": ckpt.config["train"]["preset"], "data": ckpt.config["data"]["spec"],
             "steps": ckpt.step, "epochs": ckpt.epoch, "machine": args.machine,
             "eval": f"gallery {report['gallery']['split']} ({report['gallery']['size']}), "
                     f"queries {report['queries']['split']} ({report['queries']['size']})", **scores}
    out = save_encoder(args.run, PRETRAINED / args.name, about=about)
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"wrote {out.relative_to(ROOT)} ({size:.2f} MB): pretrained:{args.name}, step {ckpt.step}, "
          f"kNN w200 {100 * scores['knn_weighted_k200']:.2f}, linear {100 * scores['linear_probe']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
