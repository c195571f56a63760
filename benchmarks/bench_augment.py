"""The cost of a training step's augmentation: pixel_views (uint8 batch in, normalized views
in the model's memory format out) against the same recipe run on channels_last batches.

    .venv/bin/python benchmarks/bench_augment.py [--augment default] [--batch-size 64] [--size 32]
        [--threads 2] [--steps 300]

Random uint8 images stand in for a batch (the stages' costs do not depend on the pixels). Each
step makes two views, as `recommended` does. The two ways alternate in blocks of 50 steps so
that both see the same machine load; prints milliseconds per step of each (median over the
blocks), whether their views agree, the machine and the command.
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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--augment", default="default", help="the recipe, as --augment of infomax train")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--size", type=int, default=32, help="image side in pixels")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=300, help="steps timed per way")
    args = p.parse_args()

    from infomax.data.pixels import normalize_pixels
    from infomax.device import describe_machine
    from infomax.train.augment import parse_augment
    from infomax.train.batches import pixel_views

    torch.set_num_threads(args.threads)
    shape = (args.batch_size, 3, args.size, args.size)
    augment = parse_augment(args.augment, shape[1:])
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    cl = torch.channels_last

    def on_channels_last(g: torch.Generator) -> list[torch.Tensor]:
        views = augment.views(x.float().div_(255).contiguous(memory_format=cl), 2, g)
        return [normalize_pixels(v, "center", unit=True) for v in views]

    ways = {"pixel_views": lambda g: pixel_views(x, 2, g, augment, "center", cl),
            "on channels_last": on_channels_last}
    same = all(torch.allclose(a, b, atol=1e-5) for a, b in zip(*(w(torch.Generator().manual_seed(1))
                                                                 for w in ways.values())))
    gens = {name: torch.Generator().manual_seed(2) for name in ways}
    for name, way in ways.items():  # warm-up
        for _ in range(20):
            way(gens[name])
    ms: dict[str, list[float]] = {name: [] for name in ways}
    block = 50
    for _ in range(max(1, args.steps // block)):
        for name, way in ways.items():
            t0 = time.perf_counter()
            for _ in range(block):
                way(gens[name])
            ms[name].append((time.perf_counter() - t0) / block * 1000)
    print(f"machine:  {describe_machine()}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"command:  {shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])}")
    print(f"recipe:   {augment.text()}; 2 views of {args.batch_size} images of {args.size}×{args.size}, "
          f"{args.threads} threads; views agree: {same}")
    median = {name: statistics.median(v) for name, v in ms.items()}
    for name, v in median.items():
        print(f"{name + ':':<18} {v:6.2f} ms per step (median of {len(ms[name])} blocks of {block} steps)")
    print(f"ratio:    pixel_views takes {median['pixel_views'] / median['on channels_last']:.2f}× the time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
