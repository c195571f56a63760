"""BatchNorm (batch statistics) → 2×2 max-pool → LeakyReLU of a training step, as four kernels
built by torch.compile: the encoder's downsampling block after its convolution.

Per channel, over the M = N·H·W positions p of the convolution's output y (BatchNorm: Ioffe &
Szegedy 2015):

    μ = mean_p y,  σ² = mean_p (y − μ)²,  x̂ = (y − μ)/√(σ² + ε),  ŷ = γ·x̂ + β
    pooled = max of ŷ over each 2×2 window,  out = LeakyReLU(pooled)

and backward, with g the gradient of out, g' = g·LeakyReLU'(pooled) and ĝ the gradient of ŷ
(g' at each window's maximum, the first in row-major order on ties as in torch's max-pool, and
zero elsewhere):

    ∂L/∂β = Σ_p ĝ,   ∂L/∂γ = Σ_p ĝ·x̂,   ∂L/∂y = γ/√(σ² + ε) · (ĝ − ∂L/∂β/M − x̂·∂L/∂γ/M)

Both sums have one term per window, so they run over the pooled map. As eager ops the block
passes over the full-resolution map many times (BatchNorm's statistics and output, the pool
and its int64 indices, the scatter of the pool's gradient, BatchNorm's reductions and input
gradient). Here `batch_moments` and `scaled_pool_act` read it twice forward (the second writes
the output, each window's argmax and the value of y there), `pooled_grad_sums` reads only the
pooled map and `bn_pool_input_grad` reads y once and writes ∂L/∂y. The function is the eager
one up to rounding: the maximum is taken before ŷ is rounded to bf16, so a window whose values
tie only after rounding may send its gradient to another of the tied positions.
tests/speedups/test_bn_pool_act.py checks values and gradients against float64 formulas.

speedups.apply switches the encoder's blocks to it for bf16 training on the CPU, where each
call still checks `bn_pool_act_applies`; the kernels compute in float32 whatever the input's
dtype.
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import Tensor, nn


def _windows(y: Tensor) -> Tensor:
    """y: N×C×H×W channels_last -> N×H/2×2×W/2×2×C float32 (a view when y is float32)."""
    n, c, h, w = y.shape
    return y.permute(0, 2, 3, 1).float().view(n, h // 2, 2, w // 2, 2, c)


def batch_moments(y: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel mean and biased variance of y (N×C×H×W) over N, H, W, in float32.

    Sums are taken of y − y[0, :, 0, 0] (a shift within the data's range), so that
    var = E[(y − s)²] − E[y − s]² does not cancel when |mean| is large against the spread;
    each image's map is summed first, then the images."""
    yl = y.permute(0, 2, 3, 1).float()  # N×H×W×C
    d = yl - yl[0, 0, 0]
    m = d.shape[0] * d.shape[1] * d.shape[2]
    mean_d = d.sum(dim=(1, 2)).sum(dim=0) / m
    var = ((d * d).sum(dim=(1, 2)).sum(dim=0) / m - mean_d * mean_d).clamp_min(0.0)
    return yl[0, 0, 0] + mean_d, var


def scaled_pool_act(y: Tensor, scale: Tensor, shift: Tensor, slope: float) -> tuple[Tensor, Tensor, Tensor]:
    """out = LeakyReLU(max over each 2×2 window of ŷ = y·scale + shift), per channel.

    y: N×C×H×W (H, W even, channels_last) -> out N×C×H/2×W/2 in y's dtype (channels_last), and
    for the backward, each window's argmax as 2·row + column (the first maximum in row-major order
    on ties) and y there, both N×H/2×W/2×C (argmax in bfloat16, where 0..3 are exact)."""
    win = _windows(y)
    y00, y01, y10, y11 = win[:, :, 0, :, 0], win[:, :, 0, :, 1], win[:, :, 1, :, 0], win[:, :, 1, :, 1]
    v00, v01, v10, v11 = y00 * scale + shift, y01 * scale + shift, y10 * scale + shift, y11 * scale + shift
    top, bottom = torch.maximum(v00, v01), torch.maximum(v10, v11)
    right_top, right_bottom, lower = v01 > v00, v11 > v10, bottom > top
    arg = torch.where(lower, right_bottom.float() + 2.0, right_top.float())
    y_max = torch.where(lower, torch.where(right_bottom, y11, y10), torch.where(right_top, y01, y00))
    pooled = torch.maximum(top, bottom)
    out = torch.where(pooled > 0, pooled, pooled * slope).to(y.dtype).permute(0, 3, 1, 2)
    return out, arg.to(torch.bfloat16), y_max.to(y.dtype)


def _pre_act_grad(grad: Tensor, out: Tensor, slope: float) -> Tensor:
    """g' = g·LeakyReLU'(pooled), N×H/2×W/2×C float32 (out > 0 exactly where pooled > 0)."""
    g = grad.permute(0, 2, 3, 1).float()
    return torch.where(out.permute(0, 2, 3, 1) > 0, g, g * slope)


def pooled_grad_sums(grad: Tensor, out: Tensor, y_max: Tensor, mean: Tensor, slope: float) -> tuple[Tensor, Tensor]:
    """Σ_p ĝ and Σ_p ĝ·(y − μ) per channel, one term per window (ĝ is zero off the maximum)."""
    g = _pre_act_grad(grad, out, slope)
    return g.sum(dim=(0, 1, 2)), (g * (y_max.float() - mean)).sum(dim=(0, 1, 2))


def bn_pool_input_grad(grad: Tensor, out: Tensor, arg: Tensor, y: Tensor, a: Tensor, b: Tensor,
                       k: Tensor, slope: float) -> Tensor:
    """∂L/∂y = a·ĝ + b + k·y per channel (the BatchNorm gradient above with its per-channel
    factors gathered into a, b, k), N×C×H×W in y's dtype and channels_last."""
    n, c, h, w = y.shape
    g = _pre_act_grad(grad, out, slope).view(n, h // 2, 1, w // 2, 1, c)
    position = torch.tensor([[0.0, 1.0], [2.0, 3.0]], device=y.device).view(1, 1, 2, 1, 2, 1)
    g_hat = torch.where(arg.float().view(n, h // 2, 1, w // 2, 1, c) == position, g * a, 0.0)
    grad_y = (g_hat + b + _windows(y) * k).to(y.dtype)
    return grad_y.view(n, h, w, c).permute(0, 3, 1, 2)


# Input dtypes the encoder uses the kernels for: in float32 they measured no faster than the
# eager ops (benchmarks/bench_train.py --precision fp32 --compare-compile, docs/training.md).
KERNEL_DTYPES = (torch.bfloat16,)


@functools.cache
def _compiled(fn):
    # One kernel per shape; past torch._dynamo's recompile limit a function runs eagerly.
    return torch.compile(fn, dynamic=False)


class _BNPoolAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y, gamma, beta, eps, slope):
        mean, var = _compiled(batch_moments)(y)
        invstd = torch.rsqrt(var + eps)
        scale = gamma * invstd
        shift = beta - mean * scale
        out, arg, y_max = _compiled(scaled_pool_act)(y, scale, shift, slope)
        ctx.save_for_backward(y, out, arg, y_max, mean, invstd, gamma)
        ctx.slope = slope
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        y, out, arg, y_max, mean, invstd, gamma = ctx.saved_tensors
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        sum_g, sum_gy = _compiled(pooled_grad_sums)(grad_out, out, y_max, mean, ctx.slope)
        m = y.numel() // y.shape[1]
        grad_gamma = sum_gy * invstd  # Σ ĝ·x̂
        a = gamma * invstd
        k = -a * invstd * grad_gamma / m
        b = -a * sum_g / m - mean * k
        grad_y = _compiled(bn_pool_input_grad)(grad_out, out, arg, y, a, b, k, ctx.slope)
        return grad_y, grad_gamma, sum_g, None, None


def bn_pool_act(y: Tensor, bn: nn.BatchNorm2d, slope: float) -> Tensor:
    """LeakyReLU(max_pool_2×2(bn(y))) for bn in training mode, updating bn's running statistics
    as bn would (the variance unbiased). y: N×C×H×W, H and W even -> N×C×H/2×W/2."""
    y = y.contiguous(memory_format=torch.channels_last)
    out, mean, var = _BNPoolAct.apply(y, bn.weight, bn.bias, bn.eps, slope)
    with torch.no_grad():
        m = y.numel() // y.shape[1]
        bn.num_batches_tracked.add_(1)
        bn.running_mean.lerp_(mean, bn.momentum)
        bn.running_var.lerp_(var * (m / (m - 1)), bn.momentum)
    return out


def bn_pool_act_applies(y: Tensor, bn: nn.Module) -> bool:
    """Whether bn_pool_act stands in for the eager ops on y: a training step (gradients on, batch
    statistics) on the CPU in a dtype of KERNEL_DTYPES, with even map sides, outside a
    torch.compile of the caller (which compiles the eager ops itself) and outside any dispatch
    mode. Whether to use the kernels at all (INFOMAX_COMPILE, a working compiler) is decided
    once, by speedups.apply. A subclass of BatchNorm2d (e.g. the synced one of multi-process
    training) keeps its own forward."""
    return (type(bn) is nn.BatchNorm2d and bn.training and torch.is_grad_enabled() and bn.affine
            and bn.track_running_stats and bn.momentum is not None and y.device.type == "cpu"
            and y.dtype in KERNEL_DTYPES and bn.weight.dtype == torch.float32
            and y.shape[-2] % 2 == 0 and y.shape[-1] % 2 == 0 and not torch.compiler.is_compiling()
            and not in_dispatch_mode())


def in_dispatch_mode() -> bool:
    """Whether a dispatch mode (FlopCounterMode, an op timer) is active. torch.compile skips a
    function called under one and keeps skipping it after, so the kernels would run eagerly for
    the rest of the process; the eager ops run instead, and op-level counters see them. torch has
    no public query for this: it is the one private torch call of infomax.speedups."""
    return torch._C._len_torch_dispatch_stack() > 0


@functools.cache
def compiler_works() -> bool:
    """Whether torch.compile builds CPU kernels here (it needs a C++ compiler); warns once if not."""
    try:
        torch.compile(lambda t: t * 2.0 + 1.0, dynamic=False, fullgraph=True)(torch.ones(4))
        return True
    except Exception as exc:  # no C++ compiler, an unsupported platform, ...
        warnings.warn(f"torch.compile cannot build kernels here ({type(exc).__name__}: {exc}); the "
                      "encoder's BatchNorm, max-pool and LeakyReLU run as separate eager ops", stacklevel=2)
        return False
