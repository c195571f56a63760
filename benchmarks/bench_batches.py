"""Batch gathering from images copied into memory vs from the cache's memory map.

    .venv/bin/python benchmarks/bench_batches.py [--data SPEC] [--batch-size 64] [--batches 2000]

Loads the data (CIFAR-10 from ../shared/data by default; decoded once, then cached), warms
the page cache, then times BatchSource.batch (gather the rows, normalize) over random epoch
orders, alternating blocks of 100 batches between the two sources so that both see the same
machine load. Prints images/s of each (median over the blocks), the machine and the command.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.zip"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="data spec (default: folder:../shared/data/cifar10-jpg.zip)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=2000, help="batches timed per source")
    args = p.parse_args()
    spec = args.data or f"folder:{SHARED_CIFAR}"
    if not args.data and not SHARED_CIFAR.is_file():
        print(f"no data: {SHARED_CIFAR} is absent (give --data SPEC)", file=sys.stderr)
        return 2

    from infomax.data import load
    from infomax.device import describe_machine
    from infomax.train.batches import BatchSource, epoch_order

    torch.set_num_threads(1)
    split = load(spec, progress=False).splits["train"]
    images = split.images  # the read-only memory map of the cache
    device = torch.device("cpu")
    sources = {
        "memory": BatchSource(images, "center", device, channels_last=True, in_memory=True),
        "memory map": BatchSource(images, "center", device, channels_last=True, in_memory=False),
    }
    order = torch.cat([epoch_order(len(split), 0, e) for e in range(1 + args.batches * args.batch_size // len(split))])
    batches = [order[i : i + args.batch_size] for i in range(0, args.batches * args.batch_size, args.batch_size)]
    for source in sources.values():  # warm-up: the page cache and the allocator
        for index in batches[:200]:
            source.batch(index)
    rates: dict[str, list[float]] = {name: [] for name in sources}
    block = 100
    for start in range(0, len(batches), block):
        for name, source in sources.items():
            t0 = time.perf_counter()
            for index in batches[start : start + block]:
                source.batch(index)
            rates[name].append(len(batches[start : start + block]) * args.batch_size / (time.perf_counter() - t0))
    print(f"machine:  {describe_machine()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"command:  {shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])}")
    print(f"data:     {spec}: train {tuple(images.shape)} uint8 ({images.nbytes / 1e6:.0f} MB)")
    median = {name: statistics.median(r) for name, r in rates.items()}
    for name, rate in median.items():
        print(f"{name + ':':<11} {rate:,.0f} images/s (batch {args.batch_size}, gather + normalize, "
              f"median of {len(rates[name])} blocks of {block} batches)")
    print(f"ratio:    the memory map gives {median['memory map'] / median['memory']:.2f}× the in-memory rate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
