"""The encoder's ConvBN block with the CPU bf16 training speed-ups: the same function and the same
parameters and buffers (so the same state_dict), computed faster where a runtime check says so.

speedups.apply switches a ConvBN instance to one of these classes (its __class__, nothing else);
speedups.remove switches it back. Each call still checks what only the call can know (autocast,
training mode, gradients on, the map's shape and dtype) and otherwise runs ConvBN's eager ops.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from infomax.model.encoder import ConvBN
from infomax.speedups.bn_pool_act import bn_pool_act, bn_pool_act_applies
from infomax.speedups.small_map_conv import conv3x3_swapped_weight_grad, swapped_weight_grad_helps


class SmallMapConvBN(ConvBN):
    """ConvBN whose convolution computes its weight gradient as a forward convolution on maps of
    at most 4×4 in CPU bf16 autocast with gradients on (speedups/small_map_conv.py)."""

    compiled_kernels = False  # CompiledConvBN: also the compiled BatchNorm → pool → LeakyReLU

    def convolve(self, x: Tensor) -> Tensor:
        if swapped_weight_grad_helps(x):  # same function, faster weight gradient on small maps
            return conv3x3_swapped_weight_grad(x, self.conv.weight)
        return self.conv(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.convolve(x))

    def downsample(self, x: Tensor, slope: float) -> Tensor:
        y = self.convolve(x)  # N×c×h×w
        if self.compiled_kernels and bn_pool_act_applies(y, self.bn):
            return bn_pool_act(y, self.bn, slope)  # N×c×h/2×w/2
        return F.leaky_relu(F.max_pool2d(self.bn(y), kernel_size=2, stride=2, ceil_mode=True), slope, inplace=True)


class CompiledConvBN(SmallMapConvBN):
    """SmallMapConvBN whose downsample runs BatchNorm → 2×2 max-pool → LeakyReLU as the kernels of
    speedups/bn_pool_act.py in a training step on bf16 maps on the CPU (`bn_pool_act_applies`)."""

    compiled_kernels = True
