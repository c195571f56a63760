"""Speed of the encoder backbones: the seed CNN against the CIFAR-style ResNet-18.

Prints: the machine and command line; parameters of each; FLOPs per image of its forward and
of a training step's forward + backward (torch.utils.flop_counter); and images/s of one
training step (forward + backward + fused Adam, channels_last, as the train loop runs it) in
fp32 and with bf16 autocast, with the seed CNN's speed over ResNet-18's. The loss is a
surrogate on the outputs, mean(local²) + mean(pooled²), so that only the encoders are timed.
The two encoders are timed in alternating rounds (each round `--steps` steps, after two
warm-up steps) so that a machine whose speed drifts affects both alike; the figures are
medians over `--repeats` rounds, with the best and worst round, and the load average before
and after (on a shared machine the best round is the nearer to the encoder's own speed),
and images per CPU-second the process used (its work, without the wait for a free core).
The seed CNN's bf16 step uses the compiled BatchNorm → max-pool → LeakyReLU kernels unless
INFOMAX_COMPILE=0 (their first build falls in the warm-up).

    .venv/bin/python benchmarks/bench_encoders.py [--batch 64] [--steps 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from infomax import speedups
from infomax.device import cpu_model
from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder
from infomax.model.resnet import ResNet18


def outputs(model: nn.Module, x: Tensor) -> tuple[Tensor, Tensor]:
    """(local, pooled) of either encoder."""
    out = model(x)
    return (out.local, out.pooled) if isinstance(model, Encoder) else out


def surrogate_loss(local: Tensor, pooled: Tensor) -> Tensor:
    return local.float().pow(2).mean() + pooled.float().pow(2).mean()


def make_step(model: nn.Module, x: Tensor, bf16: bool):
    """A training step of `model` on the fixed batch x: forward, backward, fused Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = surrogate_loss(*outputs(model, x))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def flops_per_image(model: nn.Module, x: Tensor) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per image, counted on x in train mode."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        outputs(model, x)
    fwd = counter.get_total_flops()
    counter = FlopCounterMode(display=False)
    with counter:
        surrogate_loss(*outputs(model, x)).backward()
    model.zero_grad(set_to_none=True)
    return fwd / len(x), counter.get_total_flops() / len(x)


def alternating_rates(steps: dict, rounds: int, steps_per_round: int, batch: int) -> dict[str, list[tuple[float, float]]]:
    """(images/s, images per CPU-second of this process) of each round of each named step
    function, timed in alternating rounds after two warm-up steps of each."""
    for step in steps.values():
        step()
        step()
    rates: dict[str, list[tuple[float, float]]] = {k: [] for k in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps_per_round):
                step()
            images = batch * steps_per_round
            rates[name].append((images / (time.perf_counter() - t0), images / (time.process_time() - c0)))
    return rates


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other processes competing for the cores)."""
    try:
        return ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def build(image_size: int) -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"seed CNN": Encoder(ModelConfig(image_size=image_size)), "ResNet-18": ResNet18(image_size=image_size)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="steps per timed round")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per encoder and precision")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"load average at the start: {load_average()}")
    print(f"command: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; batch {args.batch}, {args.image_size}×{args.image_size} px")

    size = args.image_size
    models = build(size)
    x8 = torch.randn(8, 3, size, size)
    for name, model in models.items():
        n = sum(p.numel() for p in model.parameters())
        heads = ""
        if isinstance(model, Encoder):
            backbone = n - sum(p.numel() for m in (model.mu, model.logvar) for p in m.parameters())
            heads = f" ({backbone:,} without the μ/log σ² heads)"
        fwd, train = flops_per_image(model, x8)
        local, pooled = outputs(model.eval(), x8[:1])
        model.train()
        print(f"{name}: {n:,} parameters{heads}; local {tuple(local.shape[1:])}, pooled {pooled.shape[1]}; "
              f"FLOPs/image forward {fwd / 1e9:.3f} G, forward + backward {train / 1e9:.3f} G")

    compiled = os.environ.get("INFOMAX_COMPILE", "1") != "0"
    for precision, bf16 in (("fp32", False), ("bf16", True)):
        models = build(size)  # fresh weights and optimizer state for each precision
        x = torch.randn(args.batch, 3, size, size).contiguous(memory_format=torch.channels_last)
        for m in models.values():  # as the training loop does: the seed CNN's CPU bf16 kernels (infomax.speedups)
            speedups.apply(m, precision=precision, device=torch.device("cpu"), compile_kernels=compiled)
        steps = {name: make_step(m.to(memory_format=torch.channels_last), x, bf16) for name, m in models.items()}
        t0 = time.perf_counter()
        rates = alternating_rates(steps, args.repeats, args.steps, args.batch)
        (a, both_a), (b, both_b) = rates.items()
        ra, rb = [r for r, _ in both_a], [r for r, _ in both_b]
        ratio = statistics.median(u / v for u, v in zip(ra, rb))
        note = f", seed CNN with compiled kernels {'on' if compiled and bf16 else 'off'}"
        print(f"train step {precision} batch {args.batch}: {a} median {statistics.median(ra):.0f} images/s "
              f"(best {max(ra):.0f}, worst {min(ra):.0f}), {b} median {statistics.median(rb):.0f} images/s "
              f"(best {max(rb):.0f}, worst {min(rb):.0f}); {a} {ratio:.1f}× as fast in the median pair of "
              f"neighbouring rounds, {max(ra) / max(rb):.1f}× best to best{note}; "
              f"{time.perf_counter() - t0:.0f} s incl. warm-up")
        ca, cb = (statistics.median(c for _, c in both) for both in (both_a, both_b))
        print(f"    per CPU-second of this process (all its threads): {a} {ca:.0f} images, {b} {cb:.0f}; "
              f"{a} {ca / cb:.1f}× (with --threads 1 other load changes this ratio far less than the wall-clock one)")
    print(f"load average at the end: {load_average()} (on {os.cpu_count()} cores; above that, rounds wait for the CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
