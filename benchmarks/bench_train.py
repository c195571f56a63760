"""Training and embedding throughput of the whole loop (data, logging, checkpointing included).

Prints images/s (the median of --repeats runs, each in a fresh process), GFLOP/s and the
ratio to this machine's matmul peak (measured in the same run), the peak memory of the
training runs, the machine, and the command.

    .venv/bin/python benchmarks/bench_train.py                     # CIFAR-10 when ../shared is there
    .venv/bin/python benchmarks/bench_train.py --data cifar10:PATH --steps 200
    .venv/bin/python benchmarks/bench_train.py --precision bf16 --compare-compile --steps 400

--compare-compile times one run's steps in alternating blocks with and without the compiled
BatchNorm → max-pool → LeakyReLU kernels (infomax/speedups/bn_pool_act.py): the machine's speed drifts
from run to run by more than the difference, and blocks of one run see the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
SHARED_CIFAR = ROOT.parent / "shared" / "data" / "cifar10-jpg.zip"


def matmul_peak(dtype_name: str, n: int = 4096, reps: int = 5) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def flops_per_image(image_size: int = 32, channels: int = 3, batch: int = 64) -> tuple[float, float]:
    """(train step, encoder forward) GFLOP per image, counted by torch.utils.flop_counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from infomax.model.config import ModelConfig
    from infomax.model.dim import DIM

    model = DIM(ModelConfig(image_size=image_size, in_channels=channels))  # preset seed
    x = torch.randn(batch, channels, image_size, image_size)
    with FlopCounterMode(display=False) as fc:
        model.loss(x)[0].backward()
    step = fc.get_total_flops() / batch / 1e9
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model.encoder.eval()(x)
    return step, fc.get_total_flops() / batch / 1e9


def load_data(spec: str | None):
    from infomax.data import load
    from infomax.data.dataset import Dataset, Split
    import numpy as np

    if spec:
        return load(spec), spec
    if SHARED_CIFAR.is_file():
        spec = f"folder:{SHARED_CIFAR}"
        return load(spec), spec
    rng = np.random.default_rng(0)  # no real data: CIFAR-shaped random pixels (speed only)
    x = rng.integers(0, 256, (50_000, 3, 32, 32), dtype=np.uint8)
    return Dataset("random", "-", {"train": Split(x, None, [str(i) for i in range(len(x))])}), "random 50000×3×32×32"


def loop_config(args, kind: str, steps: int):
    """The training config of a timed run: preset seed with the command's precision, batch, device
    and checkpoint interval, `steps` steps, a log row every --warmup steps."""
    from infomax.config import resolve

    return resolve(kind, {}, {"preset": "seed", "precision": args.precision, "batch_size": args.batch_size, "max_steps": steps,
                              "log_every": args.warmup, "checkpoint_every": args.checkpoint_every,
                              "device": args.device})


def train_child(args) -> None:
    """One training run in its own process, so its peak memory is its own."""
    import infomax.train.loop as loop
    from infomax.train.loop import train

    if args.glibc_default:  # leave glibc returning freed memory to the kernel (for comparison)
        loop.keep_freed_memory = lambda: False
    if args.batch_source != "auto":  # gather batches from a copy in memory, or from the cache's memory map
        import infomax.train.batches as batches

        batches.IN_MEMORY_FRACTION = float("inf") if args.batch_source == "memory" else 0.0
    dataset, _ = load_data(args.data)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with tempfile.TemporaryDirectory() as run:
        train(loop_config(args, dataset.kind, args.warmup + args.steps), run, dataset, progress=False)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        import csv

        rows = list(csv.DictReader(open(Path(run) / "log.csv")))
    # the first window is warm-up; the rest are timed with everything the loop does
    timed = rows[1:]
    seconds = sum(args.warmup * args.batch_size / float(r["images_per_s"]) for r in timed)
    images = args.warmup * args.batch_size * len(timed)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = args.warmup + args.steps
    print(json.dumps({"images_per_s": images / seconds, "peak_mb": peak_mb, "faults_per_step": faults / steps}))


def compile_rounds(args, block: int = 10) -> tuple[list[float], list[float]]:
    """ms per step of alternating blocks of `block` steps within one training run (whole loop),
    with the compiled BatchNorm → max-pool → LeakyReLU kernels and with the eager ops (switched by
    speedups.apply before each block), after the warm-up steps. In fp32 the kernels run here
    although training leaves them off there (KERNEL_DTYPES), to show why."""
    import torch

    import infomax.train.loop as loop
    from infomax import speedups
    from infomax.model.dim import DIM
    from infomax.speedups import bn_pool_act

    dataset, _ = load_data(args.data)
    times: dict[bool, list[float]] = {True: [], False: []}
    state = {"step": 0, "t0": None, "kernels": None}
    real_loss = DIM.loss

    def switching_loss(model, *a, **kw):
        step = state["step"]
        state["step"] += 1
        if step % block == 0:
            now = time.perf_counter()
            if state["t0"] is not None and step - block >= args.warmup:
                times[state["kernels"]].append((now - state["t0"]) / block * 1e3)
            state["kernels"] = bool((step // block) % 2)
            speedups.apply(model, precision=args.precision, device=torch.device("cpu"),
                           compile_kernels=state["kernels"])
            state["t0"] = now
        return real_loss(model, *a, **kw)

    dtypes = (torch.bfloat16, torch.float32)  # in fp32 too, to compare (training keeps fp32 eager)
    with mock.patch.object(DIM, "loss", switching_loss), \
            mock.patch.object(bn_pool_act, "KERNEL_DTYPES", dtypes), tempfile.TemporaryDirectory() as run:
        loop.train(loop_config(args, dataset.kind, args.warmup + args.steps + block), run, dataset, progress=False)
    return times[True], times[False]


def embed_speed(precision: str, n: int = 10_000, batch_size: int | None = None, image_size: int = 32,
                channels: int = 3) -> float:
    import numpy as np
    import torch

    from infomax.embed.embedder import Embedder
    from infomax.model.config import ModelConfig
    from infomax.model.dim import DIM

    model_cfg = ModelConfig(image_size=image_size, in_channels=channels)
    config = {"model": model_cfg.to_dict(), "data": {"normalization": "center", "options": {}}}
    embedder = Embedder(DIM(model_cfg).encoder, config, torch.device("cpu"), precision)
    x = np.random.default_rng(0).integers(0, 256, (n, channels, image_size, image_size), dtype=np.uint8)
    embedder.embed(x[:1000], batch_size)
    t = time.perf_counter()
    embedder.embed(x, batch_size)
    return n / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="data spec (default: CIFAR-10 from ../shared/data, else random pixels)")
    p.add_argument("--steps", type=int, default=150, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=25, help="untimed first steps (also the log window)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--checkpoint-every", type=int, default=100, help="a checkpoint inside the timed steps (default 100)")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure; the median is printed")
    p.add_argument("--embed-batch", type=int, help="images per embedding forward pass (default: the embedder's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=["fp32", "bf16", "both", "none"], default="both",
                   help="training runs to time (none: embedding only)")
    p.add_argument("--glibc-default", action="store_true",
                   help="train without keep_freed_memory (glibc's default: freed memory goes back to the kernel)")
    p.add_argument("--compare-compile", action="store_true",
                   help="one --precision run (fp32 or bf16) in this process, alternating blocks of 10 steps with and "
                        "without the compiled BatchNorm → max-pool → LeakyReLU kernels; prints both and exits")
    p.add_argument("--batch-source", choices=["auto", "memory", "map"], default="auto",
                   help="training batches from a copy in memory, from the cache's memory map, or as decided by size")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return train_child(args)
    from infomax.device import describe_machine

    if args.compare_compile:
        if args.precision not in ("fp32", "bf16"):
            p.error("--compare-compile needs --precision fp32 or bf16")
        compiled, eager = compile_rounds(args)
        ratio = statistics.median(c / e for c, e in zip(compiled, eager))
        ms = statistics.median(compiled), statistics.median(eager)
        print(f"machine: {describe_machine()}")
        print(f"command: {' '.join([os.path.relpath(sys.executable, ROOT)] + sys.argv)}")
        print(f"train {args.precision}, alternating blocks of 10 steps: {ms[0]:.1f} ms per step with the compiled "
              f"kernels, {ms[1]:.1f} ms with the eager ops (medians over {len(compiled)} and {len(eager)} blocks, "
              f"{args.batch_size * 1e3 / ms[0]:.0f} and {args.batch_size * 1e3 / ms[1]:.0f} images/s); "
              f"{ratio:.3f} the time in the median pair of neighbouring blocks"
              + ("; fp32 training itself keeps the eager ops" if args.precision == "fp32" else ""))
        return None

    print(f"machine: {describe_machine()}")
    print(f"command: {' '.join([os.path.relpath(sys.executable, ROOT)] + sys.argv)}")
    dataset, spec = load_data(args.data)  # decode (and cache) once, before any timing
    channels, size, _ = dataset.image_shape
    print(f"data: {spec}, batch {args.batch_size}, {args.steps} timed steps after {args.warmup} warm-up, "
          f"batches from {args.batch_source}")
    step_gflop, enc_gflop = flops_per_image(size, channels)
    print(f"FLOPs per image: train step {step_gflop:.3f} GFLOP, encoder forward {enc_gflop:.3f} GFLOP")
    peaks = {"fp32": matmul_peak("float32"), "bf16": matmul_peak("bfloat16")}
    print(f"matmul peak (4096²): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")
    for precision in {"both": ["fp32", "bf16"], "none": []}.get(args.precision, [args.precision]):
        cmd = [sys.executable, __file__, "--child", "--precision", precision, "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
               "--checkpoint-every", str(args.checkpoint_every), "--device", args.device,
               "--batch-source", args.batch_source]
        if args.glibc_default:
            cmd.append("--glibc-default")
        if args.data:
            cmd += ["--data", args.data]
        runs = [json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
                for _ in range(args.repeats)]
        rates = sorted(r["images_per_s"] for r in runs)
        rate = statistics.median(rates)
        gflops = rate * step_gflop
        print(f"train {precision}: median {rate:.0f} images/s over {args.repeats} runs (range {rates[0]:.0f}-{rates[-1]:.0f}), "
              f"{gflops:.0f} GFLOP/s = {gflops / peaks[precision]:.0%} of the {precision} matmul peak, "
              f"peak memory {max(r['peak_mb'] for r in runs):.0f} MB, "
              f"{statistics.median(r['faults_per_step'] for r in runs):.0f} minor page faults per step (start-up included)")
    for precision in ("fp32", "bf16"):
        rate = statistics.median(embed_speed(precision, batch_size=args.embed_batch, image_size=size, channels=channels)
                                 for _ in range(args.repeats))
        print(f"embed {precision} (batch {args.embed_batch or 'default'}): {rate:.0f} images/s, {rate * enc_gflop:.0f} GFLOP/s "
              f"= {rate * enc_gflop / peaks[precision]:.0%} of peak")


if __name__ == "__main__":
    main()
