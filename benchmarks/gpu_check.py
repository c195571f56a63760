"""The GPU path, checked in one run: training, multi-GPU training, embedding, and agreement with the CPU.

    .venv/bin/python benchmarks/gpu_check.py                    # on a CUDA machine
    .venv/bin/python benchmarks/gpu_check.py --steps 300 --data folder:cifar10-jpg.zip
    .venv/bin/python benchmarks/gpu_check.py --device cpu --steps 20 --cpu-steps 10   # a dry run anywhere

For `seed` and `recommended`, each in fp32 and bf16: trains --steps steps on one device and
reports images/s and peak GPU memory; embeds the train split and reports images/s. Then trains
`recommended` under torchrun with one process per visible GPU (NCCL; one GPU is enough to run
that path) and reports images/s. Last, trains each preset in fp32 for --cpu-steps steps on the CPU
and on the device from the same seed and prints both loss curves (means of 10-step windows)
with their largest relative difference: the same math should give the same curve up to
floating-point noise. Prints the machine and the command.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def losses(run_dir: Path) -> dict[int, float]:
    return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(open(run_dir / "log.csv"))}


def train(args, preset: str, precision: str, device: str, steps: int, out: Path):
    """(run, peak GPU MB) of one in-process training run."""
    import torch

    import infomax

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    run = infomax.fit(args.data, preset, steps=steps, out=out, precision=precision, device=device, seed=0,
                      batch_size=args.batch_size, log_every=10, checkpoint_every=10**9, bn_recalibrate=0,
                      progress=False)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else float("nan")
    return run, peak


def embed_rate(run, data, device: str, precision: str) -> float:
    import infomax

    images = data.split(data.train_split).images
    model = infomax.load(run.path, device=device, precision=precision)
    model.embed(images[:256])  # warm-up
    t = time.perf_counter()
    model.embed(images)
    return len(images) / (time.perf_counter() - t)


def torchrun_rate(args, nproc: int, out: Path) -> float:
    """images/s of `recommended` bf16 under torchrun with nproc processes, batch args.batch_size
    each (bench_ddp.py's run: logged windows after the first)."""
    import bench_ddp

    job = argparse.Namespace(data=args.data, preset="recommended", steps=args.steps, window=10,
                             batch_size=args.batch_size * nproc, precision="bf16", device=args.device)
    return bench_ddp.run(job, nproc, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits", help="data spec (default: scikit-learn's digits, bundled)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--cpu-steps", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=256, help="per GPU")
    args = p.parse_args()

    import torch

    import infomax
    from infomax.device import describe_machine

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device is visible here; run it on a GPU machine "
                         "(or --device cpu for a dry run)")
    data = infomax.load_data(args.data, progress=False)
    gpus = torch.cuda.device_count() if args.device.startswith("cuda") else 1
    print(f"machine: {describe_machine()}")
    print(f"command: .venv/bin/python benchmarks/gpu_check.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"date: {time.strftime('%Y-%m-%d')}, data: {args.data}, batch {args.batch_size}, {args.steps} steps\n")
    print("| preset | precision | train images/s | peak GPU MB | embed images/s | last loss |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for preset in ("seed", "recommended"):
            for precision in ("fp32", "bf16"):
                run, peak = train(args, preset, precision, args.device, args.steps, tmp / f"{preset}-{precision}")
                rate = embed_rate(run, data, args.device, precision)
                print(f"| {preset} | {precision} | {run.images_per_s:.0f} | {peak:.0f} | {rate:.0f} | "
                      f"{losses(run.path)[run.steps]:.4f} |", flush=True)
        print(f"\ntorchrun, recommended bf16, {gpus} process(es) × batch {args.batch_size}: "
              f"{torchrun_rate(args, gpus, tmp / 'ddp'):.0f} images/s", flush=True)
        print(f"\nloss, fp32, {args.cpu_steps} steps from seed 0: CPU against {args.device} (10-step window means)")
        for preset in ("seed", "recommended"):
            cpu = losses(train(args, preset, "fp32", "cpu", args.cpu_steps, tmp / f"cpu-{preset}")[0].path)
            dev = losses(train(args, preset, "fp32", args.device, args.cpu_steps, tmp / f"dev-{preset}")[0].path)
            worst = max(abs(dev[s] - cpu[s]) / abs(cpu[s]) for s in cpu)
            print(f"{preset}: " + ", ".join(f"{s}: {cpu[s]:.4f} / {dev[s]:.4f}" for s in cpu)
                  + f"; largest relative difference {worst:.2e}")


if __name__ == "__main__":
    main()
