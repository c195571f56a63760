"""Training throughput with 1, 2, … processes under torchrun, on the same global batch.

Runs `torchrun --nproc_per_node=N -m infomax train` for each N of --nproc, in alternating
rounds (--repeats), and reads images/s (all processes together) from the run's log after the
first window (start-up and warm-up). Each process gets cores / N threads on the CPU. Prints the
median per N, its ratio to the first N, the machine and the command.

    .venv/bin/python benchmarks/bench_ddp.py                                  # CIFAR-10 from ../shared, else digits
    .venv/bin/python benchmarks/bench_ddp.py --nproc 1 2 --precision bf16 --steps 200
    .venv/bin/python benchmarks/bench_ddp.py --device cuda --nproc 1 8         # GPUs: one process per GPU
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.zip"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, nproc: int, out: Path) -> float:
    """images/s of one torchrun job of nproc processes, over its logged windows after the first."""
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // nproc)),
           "PYTHONPATH": str(ROOT / "src")}  # this checkout's infomax, installed or not
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", "--master_port",
           str(free_port()), "-m", "infomax", "train", "--data", args.data, "--out", str(out),
           "--preset", args.preset, "--max-steps", str(args.steps), "--log-every", str(args.window),
           "--batch-size", str(args.batch_size), "--precision", args.precision, "--device", args.device,
           "--bn-recalibrate", "0", "--no-progress"]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    rows = list(csv.DictReader(open(out / "log.csv")))[1:]
    seconds = sum(args.window / float(r["images_per_s"]) for r in rows)  # per image, × batch below
    return len(rows) * args.window / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="data spec (default: CIFAR-10 from ../shared/data, else digits)")
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--preset", default="recommended")
    p.add_argument("--precision", default="bf16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64, help="the global batch")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--window", type=int, default=25, help="log window; the first is not timed")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds over --nproc")
    args = p.parse_args()
    args.data = args.data or (f"folder:{SHARED_CIFAR}" if SHARED_CIFAR.exists() else "digits")

    sys.path.insert(0, str(ROOT / "src"))
    from infomax.data import load
    from infomax.device import describe_machine

    load(args.data)  # decode and cache once, before any timing
    rates: dict[int, list[float]] = {n: [] for n in args.nproc}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for n in args.nproc:
                rates[n].append(run(args, n, Path(tmp) / f"n{n}-r{r}"))
    print(f"machine: {describe_machine()}")
    print("command: " + " ".join([".venv/bin/python", "benchmarks/bench_ddp.py", *sys.argv[1:]]))
    print(f"data: {args.data}, preset {args.preset}, {args.precision} on {args.device}, global batch "
          f"{args.batch_size}, {args.steps} steps ({args.steps - args.window} timed), {args.repeats} rounds")
    base = statistics.median(rates[args.nproc[0]])
    for n in args.nproc:
        med = statistics.median(rates[n])
        print(f"{n} process{'es' if n > 1 else ''}: median {med:.0f} images/s "
              f"(runs {', '.join(f'{x:.0f}' for x in rates[n])}), {med / base:.2f}× of {args.nproc[0]}")


if __name__ == "__main__":
    main()
