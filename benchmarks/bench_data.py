"""Benchmark the data layer: decode a zip of JPEGs into the cache, then load it back from the cache.

    .venv/bin/python benchmarks/bench_data.py [--zip ../shared/data/cifar10-jpg.zip] [--workers N]

Prints the machine (cores, CPU model), the command, images/s for the first (decoding) load and
the time of the second (cached) load. The cache goes to a temporary folder, removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from infomax.device import cpu_model

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = REPO.parent / "shared" / "data" / "cifar10-jpg.zip"


def cpu_seconds() -> float:
    """User + system CPU time of this process and of its finished child processes."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="a zip of images (folder layout)")
    parser.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    args = parser.parse_args()
    if not args.zip.is_file():
        print(f"no such file: {args.zip} (give one with --zip)", file=sys.stderr)
        return 2
    if args.workers:
        os.environ["INFOMAX_WORKERS"] = str(args.workers)

    import PIL

    from infomax.data import load
    from infomax.data.parallel import worker_count

    print(f"command:  {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(
        f"machine:  {os.cpu_count()} cores ({worker_count()} usable), {cpu_model()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print(f"software: Python {platform.python_version()}, Pillow {PIL.__version__}, numpy {np.__version__}")
    print(f"data:     {args.zip} ({args.zip.stat().st_size / 1e6:.0f} MB)")

    with tempfile.TemporaryDirectory(prefix="infomax-bench-") as cache_dir:
        spec = f"folder:{args.zip}"
        cpu_before = cpu_seconds()
        start = time.perf_counter()
        first = load(spec, progress=False, cache_dir=cache_dir)
        decode_s = time.perf_counter() - start
        cpu_s = cpu_seconds() - cpu_before
        n = first.num_images
        print(
            f"decode:   {n:,} images in {decode_s:.2f} s = {n / decode_s:,.0f} images/s "
            f"(list the zip, decode with {worker_count()} processes, write the cache)"
        )
        print(
            f"cpu:      {cpu_s:.2f} CPU-seconds in this process and its workers = {n / cpu_s:,.0f} images "
            f"per CPU-second (the wall-clock rate falls below {worker_count()}× that when other work shares the cores)"
        )

        start = time.perf_counter()
        second = load(spec, progress=False, cache_dir=cache_dir)
        open_s = time.perf_counter() - start
        checksum = sum(int(s.images.sum(dtype=np.uint64)) for s in second.splits.values())
        read_s = time.perf_counter() - start
        assert second.from_cache and checksum > 0
        print(
            f"cached:   {second.num_images:,} images {second.image_shape} opened in {open_s:.3f} s, "
            f"every pixel read in {read_s:.3f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
