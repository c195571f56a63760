"""Training from WebDataset tar shards against training from the decoded arrays in memory.

    .venv/bin/python benchmarks/bench_stream_train.py                   # 1,000,000 images at 64 px
    .venv/bin/python benchmarks/bench_stream_train.py --count 200000 --steps 300 --repeats 2 --workers 1
    .venv/bin/python benchmarks/bench_stream_train.py --format npy      # raw pixels: no decoding

Builds (or reuses, when it holds --count images) a WebDataset of --count 64 px JPEGs (or raw
.npy pixels with --format npy, as `infomax data shard --format npy` writes them) in
--shards-dir: the 20,200 train images of ../shared/data/tiny-imagenet-200-mini.zip, each written
several times, each time a random square crop of 56 to 64 px scaled back to 64 and flipped half
the time, 10,000 samples a shard, by 2 processes a shard at a time. Then trains the `recommended`
preset (bf16, batch 64, --steps steps, a log row every 25) from the stream (`workers` decoding
processes) and from the decoded Tiny ImageNet train split, in alternating fresh processes, and
prints images/s (after the first log window) and peak resident memory of each, their medians and
the ratio stream / memory, the machine and the command. Shards it wrote are deleted at the end
(--keep keeps them).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_TINY = ROOT.parent / "shared" / "data" / "tiny-imagenet-200-mini.zip"
SIZE, SHARD_SIZE, LOG_EVERY, SEED = 64, 10_000, 25, 0
MADE_BY = "benchmarks/bench_stream_train.py"
_images = _labels = _order = None  # set before the writers fork: memory-mapped train split, sample order


def _write_shard(job: tuple[Path, int, int, str]) -> dict:
    """Shard `index` of the data set: samples index·SHARD_SIZE … (< count), each a random crop."""
    import webdataset as wds
    from PIL import Image

    from infomax.atomic import temp_path
    from infomax.data.shards import KEY_DIGITS, encode_image, shard_name

    folder, index, count, fmt = job
    rng = np.random.default_rng([SEED, index])
    keys = range(index * SHARD_SIZE, min(count, (index + 1) * SHARD_SIZE))
    tmp = temp_path(folder / shard_name(index))
    with open(tmp, "wb") as f, wds.TarWriter(f, encoder=False, mtime=0) as tar:
        for key in keys:
            source = int(_order[key])
            side = int(rng.integers(56, SIZE + 1))
            x0, y0 = (int(v) for v in rng.integers(0, SIZE - side + 1, 2))
            pil = Image.fromarray(np.asarray(_images[source]).transpose(1, 2, 0))  # H×W×3
            pil = pil.crop((x0, y0, x0 + side, y0 + side)).resize((SIZE, SIZE), Image.BILINEAR)
            if rng.random() < 0.5:
                pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
            label = int(_labels[source])
            meta = {"id": f"{source}/{key // len(_images)}", "key": f"{key:0{KEY_DIGITS}d}", "split": "train",
                    "label": label}
            tar.write({"__key__": meta["key"], fmt: encode_image(np.asarray(pil).transpose(2, 0, 1), fmt),
                       "cls": str(label).encode(),
                       "json": json.dumps(meta).encode()})
    os.replace(tmp, folder / shard_name(index))
    return {"name": shard_name(index), "samples": len(keys)}


def build_shards(spec: str, out: Path, count: int, fmt: str, procs: int = 2) -> bool:
    """Write `count` samples under out/train (manifests as infomax.data.shards writes them);
    False when out already holds exactly that many."""
    import multiprocessing

    from infomax.atomic import atomic_write
    from infomax.data import load
    from infomax.data.shards import MANIFEST

    global _images, _labels, _order
    old = out / "train" / MANIFEST
    if old.is_file():
        manifest = json.loads(old.read_text())
        if manifest.get("num_samples") == count and manifest.get("image_format") == fmt:
            return False
        if not str(manifest.get("source", "")).endswith(MADE_BY):
            sys.exit(f"{out} holds other shards; choose another --shards-dir")
        shutil.rmtree(out)
    dataset = load(spec, progress=False)
    split = dataset.split("train")
    if split.images.shape[1:] != (3, SIZE, SIZE):
        sys.exit(f"{spec} has {split.images.shape[1:]} images; this benchmark needs 3×{SIZE}×{SIZE}")
    _images, _labels = split.images, split.labels  # uint8 N×3×64×64 (memory-mapped), int64 N
    copies = math.ceil(count / len(split))
    rng = np.random.default_rng(SEED)  # copy c visits the images in its own order
    _order = np.concatenate([rng.permutation(len(split)) for _ in range(copies)])[:count]
    (out / "train").mkdir(parents=True, exist_ok=True)
    jobs = [(out / "train", i, count, fmt) for i in range(math.ceil(count / SHARD_SIZE))]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        done = pool.map(_write_shard, jobs, chunksize=1)
    manifest = {"format": "webdataset", "split": "train", "num_samples": count, "image_shape": [3, SIZE, SIZE],
                "image_format": fmt, "labelled": True, "class_names": dataset.class_names,
                "normalization": dataset.normalization, "source": f"{spec} random crops, {MADE_BY}",
                "shards": done}
    atomic_write(out / "train" / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    top = {"format": "webdataset", "splits": {"train": {"path": "train", "samples": count, "shards": len(done)}},
           **{k: manifest[k] for k in ("image_shape", "image_format", "class_names", "normalization", "source")}}
    atomic_write(out / MANIFEST, json.dumps(top, indent=1) + "\n")
    return True


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def vm_hwm_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory (VmHWM), MB; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return 0.0


def watch_workers(peaks: dict, stop: threading.Event) -> None:
    """Every 0.2 s, the VmHWM of each child process forked from this one (DataLoader workers share
    its command line; compiler helpers do not), by pid."""
    me = open("/proc/self/cmdline", "rb").read()
    while not stop.wait(0.2):
        for task in os.listdir("/proc/self/task"):
            try:
                kids = open(f"/proc/self/task/{task}/children").read().split()
            except OSError:
                continue
            for pid in kids:
                try:
                    if open(f"/proc/{pid}/cmdline", "rb").read() == me:
                        peaks[pid] = max(peaks.get(pid, 0.0), vm_hwm_mb(pid))
                except OSError:
                    pass


def train_child(args) -> None:
    """One training run in this process; prints images/s after the first log window and peak RSS."""
    from infomax import load_data
    from infomax.config import resolve
    from infomax.train.loop import train

    data = load_data(f"webdataset:{args.shards_dir}" if args.child == "stream" else args.data, progress=False)
    cfg = resolve(data.kind, {}, {"preset": "recommended", "precision": "bf16", "batch_size": args.batch_size,
                                  "max_steps": args.steps, "log_every": LOG_EVERY, "device": "cpu",
                                  "workers": args.workers})
    peaks, stop = {}, threading.Event()
    watcher = threading.Thread(target=watch_workers, args=(peaks, stop), daemon=True)
    watcher.start()
    with tempfile.TemporaryDirectory() as run:
        train(cfg, run, data, progress=False)
        rows = list(csv.DictReader(open(Path(run) / "log.csv")))
    stop.set()
    watcher.join()
    steps = [int(r["step"]) for r in rows]
    windows = [(b - a, float(r["images_per_s"])) for a, b, r in zip(steps, steps[1:], rows[1:])]
    seconds = sum(n * args.batch_size / rate for n, rate in windows)
    print(json.dumps({"images_per_s": sum(n for n, _ in windows) * args.batch_size / seconds,
                      "rss_mb": vm_hwm_mb(), "worker_mb": max(peaks.values(), default=0.0), "workers": len(peaks)}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1_000_000, help="images in the WebDataset")
    p.add_argument("--shards-dir", type=Path, help="where the shards go (default /tmp/infomax-stream-COUNT-FORMAT)")
    p.add_argument("--data", default=f"tiny-imagenet:{SHARED_TINY}", help="the source of the crops, 64 px")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=1, help="processes decoding the stream")
    p.add_argument("--format", choices=("jpg", "npy"), default="jpg", help="image members: jpg (default) or npy")
    p.add_argument("--repeats", type=int, default=2, help="rounds of one stream and one in-memory run")
    p.add_argument("--keep", action="store_true", help="keep the shards written")
    p.add_argument("--child", choices=["stream", "memory"], help=argparse.SUPPRESS)
    args = p.parse_args()
    args.shards_dir = args.shards_dir or Path(tempfile.gettempdir()) / f"infomax-stream-{args.count}-{args.format}"
    if args.child:
        return train_child(args)
    if args.data == f"tiny-imagenet:{SHARED_TINY}" and not SHARED_TINY.is_file():
        print(f"skipped: no such file {SHARED_TINY} (give a 64 px data spec with --data)")
        return None
    from infomax.data import load
    from infomax.device import describe_machine

    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join([os.path.relpath(sys.executable, ROOT)] + sys.argv)}")
    print(f"load average at the start: {loadavg()}")
    load(args.data, progress=False)  # decode (and cache) before any timing
    start = time.perf_counter()
    wrote = build_shards(args.data, args.shards_dir, args.count, args.format)
    size = sum(f.stat().st_size for f in (args.shards_dir / "train").glob("*.tar")) / 1e9
    print(f"shards: {args.count:,} images at {SIZE} px in {args.shards_dir} ({size:.2f} GB, {args.format} members), "
          + (f"written by 2 processes in {time.perf_counter() - start:.0f} s" if wrote else "reused"))
    print(f"train: recommended preset, bf16, batch {args.batch_size}, {args.steps} steps, images/s after the "
          f"first {LOG_EVERY}; stream with {args.workers} worker(s)")
    runs: dict[str, list[dict]] = {"stream": [], "memory": []}
    try:
        for round_ in range(args.repeats):
            for kind in ("stream", "memory") if round_ % 2 == 0 else ("memory", "stream"):
                cmd = [sys.executable, __file__, "--child", kind, "--count", str(args.count), "--shards-dir",
                       str(args.shards_dir), "--data", args.data, "--steps", str(args.steps),
                       "--batch-size", str(args.batch_size), "--workers", str(args.workers)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                r = json.loads(out.strip().splitlines()[-1])
                runs[kind].append(r)
                print(f"{kind:>6}: {r['images_per_s']:6.1f} images/s, peak RSS {r['rss_mb']:5.0f} MB training "
                      f"process + {r['worker_mb']:4.0f} MB its largest of {r['workers']} decoding worker(s) = "
                      f"{r['rss_mb'] + r['worker_mb']:5.0f} MB; load average {loadavg()}", flush=True)
    finally:
        if wrote and not args.keep:
            shutil.rmtree(args.shards_dir, ignore_errors=True)
    rate = {k: statistics.median(r["images_per_s"] for r in v) for k, v in runs.items()}
    peak = max(r["rss_mb"] + r["worker_mb"] for r in runs["stream"])
    print(f"median images/s: stream {rate['stream']:.1f}, memory {rate['memory']:.1f}, stream / memory "
          f"{rate['stream'] / rate['memory']:.2f}; stream peak RSS {peak:.0f} MB (the training process's VmHWM "
          "plus its largest worker's, pages they share counted twice)")


if __name__ == "__main__":
    main()
