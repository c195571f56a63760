"""Does the demo prove the method? Runs `infomax demo` once per seed and checks that μ beats raw
pixels and PCA of the pixels on every protocol of its report.

Per seed and protocol it prints the learned score, the pixels', PCA's, the margin over the
better of the two and PASS or FAIL, then one line per protocol over the seeds, the wall time
of each demo (end to end, and its training), the machine and the command. Exit status 1 when
any protocol fails on any seed.

    .venv/bin/python benchmarks/bench_demo.py                    # the demo's defaults, seeds 0-2
    .venv/bin/python benchmarks/bench_demo.py --seeds 0 --steps 500 --out /tmp/bench-demo
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_demo(seed: int, out: Path, extra: list[str]) -> float:
    """One `infomax demo` in a fresh process (its output to out/demo.log); its wall seconds."""
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "infomax", "demo", "--out", str(out), "--seed", str(seed), *extra]
    start = time.perf_counter()
    with open(out / "demo.log", "w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"seed {seed}: the demo failed (exit {done.returncode}); see {out / 'demo.log'}")
    return time.perf_counter() - start


def rows(report: dict) -> list[tuple[str, float, float, float, bool]]:
    """(protocol, learned, pixels, pca, passed) for every protocol of `infomax eval`, in %."""
    from infomax.eval.report import HEADERS  # the protocols, in the report's order

    results = report["results"]
    learned = results["y"]
    pca = next(r for name, r in results.items() if name.startswith("pca"))
    out = []
    for key in HEADERS:
        scores = (100 * learned[key], 100 * results["pixels"][key], 100 * pca[key])
        out.append((key, *scores, scores[0] > max(scores[1:])))
    return out


def main() -> int:
    from infomax.device import describe_machine
    from infomax.eval.report import HEADERS

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds (default 0,1,2)")
    p.add_argument("--out", default="bench-demo", help="folder of the demos, one per seed (default bench-demo)")
    p.add_argument("--data", help="data spec (default: the demo's)")
    p.add_argument("--steps", type=int, help="training steps (default: the demo's)")
    p.add_argument("--minutes", type=float, help="training time cap (default: the demo's)")
    args = p.parse_args()
    extra = [f"--{k}={v}" for k in ("data", "steps", "minutes") if (v := getattr(args, k)) is not None]
    failed, table = 0, {}
    for seed in [int(s) for s in args.seeds.split(",")]:
        out = Path(args.out) / f"seed{seed}"
        wall = run_demo(seed, out, extra)
        report = json.loads((out / "eval.json").read_text())
        log = (out / "run" / "log.csv").read_text().strip().splitlines()
        step, train_s = log[-1].split(",")[0], float(log[-1].split(",")[-1])
        print(f"\nseed {seed}: {step} steps, training {train_s:.0f} s, demo end to end {wall:.0f} s ({out})")
        print(f"{'protocol':<10} {'learned':>8} {'pixels':>8} {'PCA':>8} {'margin':>8}")
        for key, learned, pixels, pca, passed in rows(report):
            failed += not passed
            table.setdefault(key, []).append(learned - max(pixels, pca))
            print(f"{HEADERS[key]:<10} {learned:8.2f} {pixels:8.2f} {pca:8.2f} {learned - max(pixels, pca):+8.2f} "
                  f"{'PASS' if passed else 'FAIL'}")
    print("\nmargin over the better baseline, per seed (points):")
    for key, margins in table.items():
        cells = " ".join(f"{m:+6.2f}" for m in margins)
        print(f"{HEADERS[key]:<10} {cells}   min {min(margins):+.2f}  {'PASS' if min(margins) > 0 else 'FAIL'}")
    print(f"\n{'PASS' if not failed else f'FAIL: {failed} protocol-seed pairs not above both baselines'}")
    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join([os.path.relpath(sys.executable, ROOT)] + sys.argv)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
