"""Peak memory and time of the first load of a large zip of images (and of `data info` on it).

    .venv/bin/python benchmarks/bench_first_load.py [--count 200000] [--workers N]

Builds /tmp/infomax-first-load-COUNT.zip once (not in the repository): the 60,000 CIFAR-10 JPEGs
of ../shared/data/cifar10-jpg.zip, then copies of them cropped (a different 28×28 window per copy),
scaled back to 32×32 and re-encoded, in the same train/test/<class>/ layout. Then, each in a fresh
process with a fresh cache folder and default options: the first load (`folder:ZIP`: list the
zip, decode with the worker processes, write the cache) and `data info` on the cached copy
(pixel statistics over every image). Prints the peak resident memory of the main process
(ru_maxrss, and VmHWM of /proc/self/status, which does not count the memory of the process it
was started from) and of the largest worker, the time, the machine and the command. This script
imports nothing large itself: a process started from it inherits its peak in ru_maxrss.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.zip"


def build_zip(count: int, out: Path) -> None:
    """`count` 32×32 JPEGs: the CIFAR-10 ones first, then cropped, re-encoded copies."""
    from PIL import Image

    with zipfile.ZipFile(SHARED_CIFAR) as src:
        members = [m for m in src.namelist() if m.lower().endswith(".jpg")]
        tmp = out.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as dst:
            for i in range(count):
                copy, name = divmod(i, len(members))
                data = src.read(members[name])
                folder, file = members[name].rsplit("/", 1)
                if copy:
                    dx, dy = copy % 5, (copy // 5) % 5  # a different 28×28 window per copy
                    image = Image.open(io.BytesIO(data)).convert("RGB").crop((dx, dy, dx + 28, dy + 28))
                    buffer = io.BytesIO()
                    image.resize((32, 32), Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=90)
                    data = buffer.getvalue()
                dst.writestr(f"{folder}/c{copy}_{file}", data)
        os.replace(tmp, out)


def cpu_model() -> str:
    """`lscpu | grep 'Model name'`, or the platform's processor name."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        import platform

        return platform.processor() or "unknown CPU"


def child(kind: str, spec: str, cache_dir: str) -> None:
    """One measured step in this fresh process; prints a JSON line."""
    from infomax.data import load

    start = time.perf_counter()
    dataset = load(spec, progress=False, cache_dir=cache_dir)
    if kind == "info":
        from infomax.data.info import describe

        describe(dataset, 0.0)  # the pixel statistics read every image
    seconds = time.perf_counter() - start
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    status = Path("/proc/self/status").read_text() if Path("/proc/self/status").is_file() else ""
    hwm = [int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")]
    print(json.dumps({"seconds": seconds, "images": dataset.num_images, "from_cache": dataset.from_cache,
                      "shape": list(dataset.image_shape), "peak_mb": own.ru_maxrss / 1024,
                      "hwm_mb": hwm[0] if hwm else None,
                      "worker_peak_mb": workers.ru_maxrss / 1024,
                      "cpu_s": own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime}))


def run_child(kind: str, spec: str, cache_dir: str) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--spec", spec, "--cache-dir", cache_dir]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=200_000, help="images in the zip (default 200,000)")
    p.add_argument("--workers", type=int, help="decoding processes (default: all cores)")
    p.add_argument("--child", choices=["load", "info"], help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    p.add_argument("--cache-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.spec, args.cache_dir)
        return 0
    if not SHARED_CIFAR.is_file():
        print(f"skipped: {SHARED_CIFAR} is absent (the CIFAR-10 JPEGs the zip is built from)")
        return 0
    if args.workers:
        os.environ["INFOMAX_WORKERS"] = str(args.workers)

    from infomax.data.parallel import worker_count

    data = Path(tempfile.gettempdir()) / f"infomax-first-load-{args.count}.zip"
    if not data.is_file():
        t0 = time.perf_counter()
        build_zip(args.count, data)
        print(f"built:    {data} in {time.perf_counter() - t0:.0f} s")
    print(f"command:  {shlex.join([os.path.relpath(sys.executable, ROOT), *sys.argv])}")
    print(f"machine:  {os.cpu_count()} cores ({worker_count()} decoding processes), {cpu_model()}, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"data:     {data} ({args.count:,} JPEGs, {data.stat().st_size / 1e6:.0f} MB)")
    with tempfile.TemporaryDirectory(prefix="infomax-bench-") as cache_dir:
        spec = f"folder:{data}"
        first = run_child("load", spec, cache_dir)
        c, h, w = first["shape"]
        array_mb = first["images"] * c * h * w / 1e6
        print(f"first:    {first['images']:,} images of {c}×{h}×{w} ({array_mb:,.0f} MB decoded) in "
              f"{first['seconds']:.1f} s = {first['images'] / first['seconds']:,.0f} images/s, "
              f"{first['cpu_s']:.0f} CPU-seconds")
        print(f"memory:   peak resident {first['peak_mb']:,.0f} MB in the main process (ru_maxrss; "
              f"VmHWM {first['hwm_mb']:,.0f} MB), {first['worker_peak_mb']:,.0f} MB in the largest worker")
        info = run_child("info", spec, cache_dir)
        print(f"info:     data info from the cache (pixel statistics over every image) in {info['seconds']:.1f} s, "
              f"peak resident {info['peak_mb']:,.0f} MB (ru_maxrss; VmHWM {info['hwm_mb']:,.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
