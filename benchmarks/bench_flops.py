"""FLOPs and throughput of the DIM model step on this machine.

Prints: the machine and command line; FLOPs per image of a training step (forward + backward
of the full objective) and of the encoder forward (torch.utils.flop_counter), with what the
critics would cost as naive concatenations; the machine's 4096² matmul GFLOP/s in fp32 and
bf16; one Adam step in each of torch's three implementations; the weight gradient of each
encoder convolution by oneDNN's own kernel and as a forward convolution (speedups/small_map_conv.py);
images/s of a model step (forward + backward + fused Adam) at the given batch, fp32 and bf16
autocast, channels_last, with the fraction of matmul peak it reaches (the bf16 step with the
speed-ups of infomax.speedups, as training applies them); the bf16 step with and without the
swapped weight gradient, and with and without the compiled BatchNorm → max-pool → LeakyReLU
kernels (speedups/bn_pool_act.py), timed in alternating rounds so both see the same
machine; and where the bf16 step's time goes: each compiled kernel, and every other op timed
at the dispatcher.

    .venv/bin/python benchmarks/bench_flops.py [--batch 64] [--steps 10] [--repeats 5] [--compile]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from unittest import mock

import torch
from torch.utils.flop_counter import FlopCounterMode

from infomax import speedups
from infomax.device import cpu_model
from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.objective.negatives import derangement
from infomax.objective.loss import Draws
from infomax.speedups import bn_pool_act
from infomax.speedups.small_map_conv import conv3x3_weight_grad


ADAM_EPS = 1e-7  # Keras' (preset seed)


def seed_loss(model: DIM, x, eps, perm):
    """The seed objective of a batch with its randomness given (one permutation for both critics)."""
    return model.objective.total(model.objective.terms(*model.encoder(x), Draws(eps, perm, perm)))

def count_flops(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def naive_critic_flops(model: DIM, batch: int) -> int:
    """Forward FLOPs of both critics applied to explicit concatenations, as the reference does:
    every positive and negative pair goes through the whole MLP."""
    cfg = model.cfg
    z = torch.randn(batch, cfg.z_dim)
    local = torch.randn(batch, 16, cfg.channels)

    def mlp(layers, h):
        for layer in layers:
            h = layer(h)
        return h

    def run():
        pairs = torch.cat([z, z], 1)
        mlp(model.objective.global_critic.layers, torch.cat([pairs, pairs]))
        rows = torch.cat([z[:, None].expand(batch, 16, cfg.z_dim), local], -1)
        mlp(model.objective.local_critic.layers, torch.cat([rows, rows]))

    with torch.no_grad():
        return count_flops(run)


def best_ms(fn, repeats: int = 20) -> float:
    """The fastest of `repeats` timed calls of fn, after one untimed call, in ms."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def matmul_gflops(dtype: torch.dtype, n: int = 4096, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / best_ms(lambda: a @ b, repeats) / 1e6


def make_step(cfg: ModelConfig, batch: int, bf16: bool, compile_: bool):
    torch.manual_seed(0)
    model = DIM(cfg).to(memory_format=torch.channels_last)
    if not compile_:  # as the training loop does (torch.compile of the whole step compiles the plain model)
        speedups.apply(model, precision="bf16" if bf16 else "fp32", device=torch.device("cpu"))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=ADAM_EPS, fused=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, cfg.in_channels, cfg.image_size, cfg.image_size)
    x = x.contiguous(memory_format=torch.channels_last)

    def loss_fn(x, eps, perm):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            return seed_loss(model, x, eps, perm)

    fn = torch.compile(loss_fn) if compile_ else loss_fn

    def step():
        perm = derangement(batch, generator=gen)
        eps = torch.randn(batch, cfg.z_dim, generator=gen)
        loss = fn(x, eps, perm)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return model, step


def adam_step_ms(model: DIM, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per Adam step on the model's parameters (random gradients), for torch's
    per-tensor loop, its foreach form and the fused kernel (best of 5 rounds)."""
    params = list(model.parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    out = {}
    for name, kw in (("for-loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
        opt = torch.optim.Adam(params, lr=1e-3, eps=ADAM_EPS, **kw)
        out[name] = best_ms(lambda: [opt.step() for _ in range(repeats)], 5) / repeats
    return out


def weight_grad_ms(cfg: ModelConfig, batch: int) -> list[tuple[str, str, float, float]]:
    """(layer, dtype, oneDNN's weight-gradient kernel ms, as a forward convolution ms) for each
    3×3 convolution of the encoder, channels_last, best of 20."""
    widths = (cfg.in_channels, *cfg.widths) + (cfg.channels,) * cfg.head_convs
    size, rows, cl = cfg.image_size, [], torch.channels_last
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        for dtype in (torch.bfloat16, torch.float32):
            x = torch.randn(batch, c_in, size, size, dtype=dtype).contiguous(memory_format=cl)
            w = torch.randn(c_out, c_in, 3, 3, dtype=dtype).contiguous(memory_format=cl)
            g = torch.randn(batch, c_out, size, size, dtype=dtype).contiguous(memory_format=cl)
            native = best_ms(lambda: torch.ops.aten.convolution_backward(
                g, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [False, True, False]))
            swapped = best_ms(lambda: torch.empty_like(w).copy_(conv3x3_weight_grad(x, g)))
            rows.append((f"{c_in}->{c_out} at {size}×{size}", str(dtype).removeprefix("torch."), native, swapped))
        if i < len(cfg.widths):
            size = (size + 1) // 2
    return rows


def alternating_ms(steps: dict, rounds: int, steps_per_round: int) -> dict[str, list[float]]:
    """ms per step of each round of each named step function, the functions timed in
    alternating rounds (so a machine whose speed drifts affects both alike)."""
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(2):
        for step in steps.values():
            step()
    for _ in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for _ in range(steps_per_round):
                step()
            times[name].append((time.perf_counter() - t0) / steps_per_round * 1e3)
    return times


OP_GROUPS = {  # aten op name -> the part of a step it belongs to
    "convolution": "convolutions", "convolution_backward": "convolutions",
    "mm": "matmuls", "addmm": "matmuls", "bmm": "matmuls",
    "native_batch_norm": "BatchNorm", "native_batch_norm_backward": "BatchNorm",
    "max_pool2d_with_indices": "max-pool", "max_pool2d_with_indices_backward": "max-pool",
    "leaky_relu": "activations", "leaky_relu_": "activations", "leaky_relu_backward": "activations",
    "relu": "activations", "threshold_backward": "activations",
    "_fused_adam_": "Adam", "_to_copy": "casts and copies", "copy_": "casts and copies",
}


def op_ms_per_step(step, steps: int) -> dict[str, float]:
    """ms per step spent in each part of the step (OP_GROUPS, the rest as "other ops"), timed op
    by op at the dispatcher. CPU ops run synchronously, so each op's wall time is its own cost;
    unlike torch.profiler this adds nothing inside the ops. The compiled kernels of
    speedups/bn_pool_act.py (which torch.compile does not run under a dispatch mode) run with
    the timer set aside and are timed per call."""
    from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

    totals: dict[str, float] = {}
    compiled_part = "BatchNorm, max-pool, activation (compiled)"
    compile_ = bn_pool_act._compiled

    def add(part: str, t0: float) -> None:
        totals[part] = totals.get(part, 0.0) + time.perf_counter() - t0

    def timed(fn):
        compiled = compile_(fn)

        def call(*args):
            with _disable_current_modes():
                t0 = time.perf_counter()
                out = compiled(*args)
                add(compiled_part, t0)
            return out

        return call

    def applies(y, bn):
        with _disable_current_modes():
            return bn_pool_act.bn_pool_act_applies(y, bn)  # outside the timer's dispatch mode

    class OpTimer(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            t0 = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            add(OP_GROUPS.get(func.overloadpacket.__name__, "other ops"), t0)
            return out

    with mock.patch.object(bn_pool_act, "_compiled", timed), \
            mock.patch("infomax.speedups.convbn.bn_pool_act_applies", applies):
        step()
        with OpTimer():
            totals.clear()
            for _ in range(steps):
                step()
    return {k: v / steps * 1e3 for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def compare_rounds(label: str, steps: dict, rounds: int, steps_per_round: int) -> str:
    """One line comparing two step functions timed in alternating rounds: each one's median ms,
    the median ratio of neighbouring rounds (first / second) and the range of the rounds."""
    times = alternating_ms(steps, rounds, steps_per_round)
    (a, ta), (b, tb) = times.items()
    ratio = statistics.median(x / y for x, y in zip(ta, tb))
    return (f"{label}, alternating rounds: {statistics.median(ta):.1f} ms {a}, {statistics.median(tb):.1f} ms {b} "
            f"(medians); {ratio:.3f} the time in the median pair of neighbouring rounds; "
            f"rounds {min(ta):.1f}-{max(ta):.1f} and {min(tb):.1f}-{max(tb):.1f} ms")


def time_steps(step, steps: int, repeats: int, batch: int) -> list[float]:
    """images/s of each repeat (each the mean of `steps` steps), after two warm-up steps."""
    return [batch / ms * 1e3 for ms in alternating_ms({"step": step}, repeats, steps)["step"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="also time the step under torch.compile")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = ModelConfig(image_size=args.image_size)
    print(f"command: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    threads = torch.get_num_threads()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {threads} threads")

    # FLOPs (counted at batch 8 and divided; the count is linear in the batch)
    n = 8
    model = DIM(cfg)
    x = torch.randn(n, cfg.in_channels, cfg.image_size, cfg.image_size)
    eps, perm = torch.randn(n, cfg.z_dim), derangement(n)
    train = count_flops(lambda: seed_loss(model, x, eps, perm).backward()) / n
    with torch.no_grad():
        enc = count_flops(lambda: model.encoder(x)) / n
        critics = count_flops(lambda: seed_loss(model, x, eps, perm)) / n - enc
    naive = naive_critic_flops(model, n) / n
    print(f"FLOPs/image: train step {train / 1e9:.3f} G, encoder forward {enc / 1e9:.3f} G, "
          f"critics forward {critics / 1e6:.1f} M (as naive concatenations: {naive / 1e6:.1f} M)")

    peak = {dt: matmul_gflops(dt) for dt in (torch.float32, torch.bfloat16)}
    print(f"matmul 4096²: fp32 {peak[torch.float32]:.0f} GFLOP/s, bf16 {peak[torch.bfloat16]:.0f} GFLOP/s")

    adam = adam_step_ms(model)
    print(f"Adam step ({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters): "
          + ", ".join(f"{k} {v:.2f} ms" for k, v in adam.items()))

    for layer, dtype, native, swapped in weight_grad_ms(cfg, args.batch):
        print(f"conv weight gradient {layer:16s} {dtype:8s}: oneDNN {native:.2f} ms, "
              f"as a forward convolution {swapped:.2f} ms")

    variants = [("fp32", False, False), ("bf16", True, False)]
    if args.compile:
        variants += [("fp32 compiled", False, True), ("bf16 compiled", True, True)]
    for name, bf16, compile_ in variants:
        t0 = time.perf_counter()
        try:
            _, step = make_step(cfg, args.batch, bf16, compile_)
            rates = time_steps(step, args.steps, args.repeats, args.batch)
        except Exception as exc:  # torch.compile is optional: report why it did not run
            print(f"model step {name}: failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
            continue
        med, best = statistics.median(rates), max(rates)
        dt = torch.bfloat16 if bf16 else torch.float32
        ratio = best * train / 1e9 / peak[dt]
        print(f"model step {name:13s} batch {args.batch}: median {med:.0f} images/s, best {best:.0f} "
              f"({best * train / 1e9:.0f} GFLOP/s, {ratio:.0%} of matmul peak; "
              f"{time.perf_counter() - t0:.0f} s incl. warm-up)")
    model, step = make_step(cfg, args.batch, True, False)
    label = f"model step bf16 batch {args.batch}"

    def without(patch):
        def run():
            with patch:
                step()
        return run

    oneDNN = without(mock.patch("infomax.speedups.convbn.swapped_weight_grad_helps", return_value=False))
    print(compare_rounds(label, {"with the head convolutions' weight gradient as a forward convolution": step,
                                 "with oneDNN's": oneDNN}, 2 * args.repeats, args.steps))

    def eager():
        speedups.apply(model, precision="bf16", device=torch.device("cpu"), compile_kernels=False)
        step()
        speedups.apply(model, precision="bf16", device=torch.device("cpu"))

    print(compare_rounds(label, {"with the compiled BatchNorm → max-pool → LeakyReLU kernels": step,
                                 "with the eager ops": eager}, 2 * args.repeats, args.steps))
    parts = op_ms_per_step(step, args.steps)
    total = sum(parts.values())
    print(f"model step bf16 batch {args.batch}, time in ops {total:.1f} ms per step: "
          + ", ".join(f"{k} {v:.1f} ms ({v / total:.0%})" for k, v in parts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
