"""Benchmark streaming tar shards: images/s of Stream.batches (uint8 batches out) and peak memory.

    .venv/bin/python benchmarks/bench_stream.py [--zip ../shared/data/cifar10-jpg.zip] [--split test]
        [--sizes 32 64] [--workers 0 1 2] [--batch 256]

Writes one split of a zip of JPEGs (folder layout) as PNG shards of 1000 images at each size,
into a temporary folder, then reads one epoch of them for each worker count, each run in a
fresh process so that its peak resident memory is its own. Prints the machine and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO.parent / "shared" / "data" / "cifar10-jpg.zip"


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited over fork + exec)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def measure(folder: str, workers: int, batch: int) -> dict:
    """One epoch of the shards in `folder` on one rank: images/s and peak RSS (this process, workers)."""
    from infomax.data.stream import open_stream

    stream = open_stream(f"webdataset:{folder}")
    start, images, checksum = time.perf_counter(), 0, 0
    for x, y, ids in stream.batches(epoch=0, seed=0, batch_size=batch, workers=workers):
        images += len(x)
        checksum += int(x[:, :, 0, 0].sum())  # touch the pixels
    seconds = time.perf_counter() - start
    own = peak_rss_mb()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest worker
    return {"images": images, "seconds": seconds, "rss_mb": own, "worker_rss_mb": kids, "checksum": checksum}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="a zip of images (folder layout)")
    parser.add_argument("--split", default="test", help="the split to shard (default test: 10,000 of CIFAR-10)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--measure", metavar="DIR", help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.workers[0], args.batch)))
        return 0
    if not args.zip.is_file():
        print(f"skipped: no such file {args.zip} (give one with --zip)")
        return 0

    from infomax.data.shards import write_shards
    from infomax.device import cpu_model

    print(f"command:  {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine:  {os.cpu_count()} cores, {cpu_model()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="infomax-bench-stream-") as tmp:
        for size in args.sizes:
            out = Path(tmp) / f"s{size}"
            start = time.perf_counter()
            top = write_shards(f"folder:{args.zip}", out, shard_size=1000, size=size, split=args.split,
                               progress=False)
            n = top["splits"][args.split]["samples"]
            mb = sum(p.stat().st_size for p in out.rglob("*.tar")) / 1e6
            print(f"write {size:>3} px: {n:,} images in {time.perf_counter() - start:.1f} s "
                  f"({top['splits'][args.split]['shards']} shards, {mb:.1f} MB of PNG)")
            for workers in args.workers:
                child = subprocess.run(
                    [sys.executable, __file__, "--measure", str(out / args.split), "--workers", str(workers),
                     "--batch", str(args.batch)], capture_output=True, text=True, check=True)
                r = json.loads(child.stdout.strip().splitlines()[-1])
                print(f"read  {size:>3} px, workers {workers}: {r['images']:,} images in {r['seconds']:.2f} s = "
                      f"{r['images'] / r['seconds']:,.0f} images/s; peak RSS {r['rss_mb']:.0f} MB "
                      f"(largest worker {r['worker_rss_mb']:.0f} MB, pages shared with it included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
