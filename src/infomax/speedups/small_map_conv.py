"""A 3×3 "same" convolution whose weight gradient is computed as a forward convolution.

For y = conv(x, W) (stride 1, padding 1) the weight gradient is

    ∂L/∂W[o, i, a, b] = Σ_n Σ_(u,v) ∂L/∂y[n, o, u, v] · x[n, i, u + a − 1, v + b − 1]

which is itself a "same"-padded forward convolution once batch and channels swap places:
the input x read as Cin images of N channels, the gradient ∂L/∂y as Cout filters of N channels
with an H×W kernel, giving a Cin×Cout×3×3 result. On the encoder's 4×4 maps in bf16 on the CPU,
oneDNN runs that forward convolution in about three quarters of the time of its own
weight-gradient kernel (benchmarks/bench_flops.py prints both, per layer); on larger maps and in
fp32 its own kernel is as fast or faster, so the blocks that speedups.apply switches use this
only where it helps (`swapped_weight_grad_helps`).
The input gradient is the usual one. The function is exactly the convolution's; tests compare
both gradients with torch's in float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def conv3x3_weight_grad(x: Tensor, grad_out: Tensor) -> Tensor:
    """∂L/∂W of a 3×3 stride-1 padding-1 convolution, as a forward convolution.

    x: N×Cin×H×W (the convolution's input), grad_out: N×Cout×H×W -> Cout×Cin×3×3.
    """
    swapped = F.conv2d(x.transpose(0, 1), grad_out.transpose(0, 1), padding=1)  # Cin×Cout×3×3
    return swapped.transpose(0, 1)


class _SwappedWeightGradConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return F.conv2d(x, weight, padding=1)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad_out, x, weight, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, False, False])[0]
        if ctx.needs_input_grad[1]:  # in the weight's own memory layout, so autograd keeps it as is
            grad_w = torch.empty_like(weight).copy_(conv3x3_weight_grad(x, grad_out))
        return grad_x, grad_w


def conv3x3_swapped_weight_grad(x: Tensor, weight: Tensor) -> Tensor:
    """conv2d(x, weight, padding=1), with the weight gradient computed by conv3x3_weight_grad.

    Under autocast the inputs are cast here to the autocast dtype, as conv2d's would be, so the
    backward runs in the same precision as the forward."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        x, weight = x.to(dtype), weight.to(dtype)
    return _SwappedWeightGradConv.apply(x, weight)


def swapped_weight_grad_helps(x: Tensor) -> bool:
    """Whether a training step on x (N×C×H×W) is faster with conv3x3_swapped_weight_grad:
    maps of at most 4×4, in bf16 autocast on the CPU, with gradients on."""
    return (x.device.type == "cpu" and torch.is_grad_enabled() and x.shape[-1] * x.shape[-2] <= 16
            and torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16)
