"""Opt-in speed-ups for training on the CPU in bf16; the model itself (infomax.model) is plain.

    applied = speedups.apply(model, precision="bf16", device=torch.device("cpu"))

switches each ConvBN block of the model to a subclass (speedups/convbn.py) that computes the
same function faster: the weight gradient of convolutions on 4×4 maps as a forward convolution
(speedups/small_map_conv.py) and, with compile_kernels, BatchNorm → 2×2 max-pool → LeakyReLU of
the downsampling blocks as kernels that torch.compile builds (speedups/bn_pool_act.py).
Parameter and buffer names do not change, so state_dicts and checkpoints are the same with and
without them; `remove` switches the blocks back. The training loop applies them once after
building the model (INFOMAX_COMPILE=0 there turns the compiled kernels off).
"""

from __future__ import annotations

import torch
from torch import nn

from infomax.errors import InfomaxError
from infomax.model.encoder import ConvBN
from infomax.speedups import bn_pool_act
from infomax.speedups.convbn import CompiledConvBN, SmallMapConvBN

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}  # what autocast gives the convolutions


def _dtype(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise InfomaxError(f"speedups: unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]


def _wants_kernels(dtype: torch.dtype, device: torch.device, compile_kernels: bool) -> bool:
    return compile_kernels and device.type == "cpu" and dtype in bn_pool_act.KERNEL_DTYPES


def apply(model: nn.Module, *, precision: str, device: torch.device, compile_kernels: bool = True) -> list[str]:
    """Switch every ConvBN in `model` to the fast path that helps for this precision and device;
    returns one line per speed-up applied (empty when none helps, e.g. fp32 or CUDA). Applying
    again with other arguments replaces the earlier choice. Without a working C++ compiler the
    compiled kernels are left out, with one warning."""
    dtype = _dtype(precision)
    device = torch.device(device)
    cls = ConvBN
    if device.type == "cpu" and dtype == torch.bfloat16:
        cls = SmallMapConvBN
    if _wants_kernels(dtype, device, compile_kernels) and bn_pool_act.compiler_works():
        cls = CompiledConvBN
    blocks = [m for m in model.modules() if isinstance(m, ConvBN)]
    for block in blocks:
        block.__class__ = cls
    applied = []
    if issubclass(cls, SmallMapConvBN):
        applied.append(f"{len(blocks)} ConvBN blocks: weight gradient on maps of at most 4×4 as a forward convolution")
    if issubclass(cls, CompiledConvBN):
        applied.append(f"{len(blocks)} ConvBN blocks: compiled BatchNorm → max-pool → LeakyReLU when downsampling")
    return applied


def remove(model: nn.Module) -> int:
    """Switch every ConvBN in `model` back to the plain class; returns how many were switched."""
    switched = 0
    for block in model.modules():
        if isinstance(block, ConvBN) and type(block) is not ConvBN:
            block.__class__ = ConvBN
            switched += 1
    return switched


def first_step_notice(precision: str, device: torch.device, *, compile_kernels: bool = True) -> str | None:
    """The line `infomax train` prints before a run whose first step builds the compiled kernels."""
    if not _wants_kernels(_dtype(precision), torch.device(device), compile_kernels):
        return None
    return ("bf16 on the CPU: the first step builds compiled kernels for BatchNorm → max-pool → LeakyReLU "
            "(about 25 s the first time on a machine, cached after; INFOMAX_COMPILE=0 turns them off)")


__all__ = ["apply", "remove", "first_step_notice", "PRECISIONS"]
