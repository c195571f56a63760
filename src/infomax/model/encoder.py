"""The convolutional encoder: image -> (μ, log σ², local feature map C, pooled feature).

For a 32×32 input (channels in brackets, NCHW):
    x    N×3×32×32
    3 × [3×3 conv "same" -> BatchNorm -> LeakyReLU(0.2) -> 2×2 max-pool]
         N×64×16×16 -> N×128×8×8 -> N×256×4×4 = C (the local features)
    2 × [3×3 conv 256 "same" -> BatchNorm -> LeakyReLU(0.2)]   N×256×4×4
    global max-pool                                              N×256 = pooled
    μ = Linear(pooled), log σ² = Linear(pooled)                  N×256 each
Other sizes use as many downsampling blocks as it takes to reach 4×4 (see ModelConfig).
With `attention` a self-attention block (model/attention.py) follows the block before C.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn

from infomax.model.attention import SelfAttention
from infomax.model.config import ModelConfig
from infomax.model.init import init_weights_


class EncoderOutput(NamedTuple):
    mu: Tensor  # N×z, the mean of q(z|x): the feature a user keeps
    logvar: Tensor  # N×z, log σ² of q(z|x)
    local: Tensor  # N×channels×4×4, the local feature map C ("conv" features when flattened)
    pooled: Tensor  # N×channels, global max-pool before the heads ("fc" features)
    middle: Tensor | None = None  # N×channels/2×8×8, the map one block before C (multi-scale MI)


class ConvBN(nn.Module):
    """3×3 "same" convolution followed by BatchNorm (batch statistics in train(), running
    statistics in eval()). The activation (and pooling) is applied by the caller.

    The convolution has no bias: BatchNorm subtracts the per-channel mean right after it, so a
    bias would cancel exactly in training (its gradient is zero) and be absorbed by the running
    mean in eval. Leaving it out changes nothing but saves its gradient reduction."""

    def __init__(self, c_in: int, c_out: int, cfg: ModelConfig):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=cfg.bn_eps, momentum=cfg.bn_momentum)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))  # N×c_out×h×w

    def downsample(self, x: Tensor, slope: float) -> Tensor:
        """LeakyReLU(max_pool_2×2(self(x))), N×c×⌈h/2⌉×⌈w/2⌉.

        LeakyReLU is non-decreasing, so max-pooling commutes with it: pool(act(y)) ==
        act(pool(y)), and pooling first applies the activation to 4× fewer values. (Training on
        the CPU in bf16 swaps in faster kernels for the same function: infomax.speedups.)"""
        y = F.max_pool2d(self.bn(self.conv(x)), kernel_size=2, stride=2, ceil_mode=True)
        return F.leaky_relu(y, slope, inplace=True)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Weights saved with a conv bias b load exactly: BN(conv + b) = BN(conv) with the
        # running mean shifted by -b (training mode cancels b anyway).
        bias = state_dict.pop(prefix + "conv.bias", None)
        mean_key = prefix + "bn.running_mean"
        if bias is not None and mean_key in state_dict:
            state_dict[mean_key] = state_dict[mean_key] - bias.to(state_dict[mean_key].dtype)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Encoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        widths = (cfg.in_channels, *cfg.widths)
        self.down = nn.ModuleList(ConvBN(a, b, cfg) for a, b in zip(widths[:-1], widths[1:]))
        if cfg.attention:  # on the map one block before C
            self.attention = SelfAttention(cfg.widths[-2])
        self.head = nn.ModuleList(ConvBN(cfg.channels, cfg.channels, cfg) for _ in range(cfg.head_convs))
        self.mu = nn.Linear(cfg.channels, cfg.z_dim)
        self.logvar = nn.Linear(cfg.channels, cfg.z_dim)
        init_weights_(self, cfg.init)
        # what the objective's critics read (model/encoders.py)
        self.z_dim, self.local_channels, self.pooled_dim = cfg.z_dim, cfg.channels, cfg.channels
        self.middle_channels = cfg.widths[-2]

    def forward(self, x: Tensor) -> EncoderOutput:
        slope = self.cfg.leaky_slope
        maps = []
        for i, block in enumerate(self.down):
            x = block.downsample(x, slope)  # N×c×⌈h/2⌉×⌈w/2⌉
            if i == len(self.down) - 2 and self.cfg.attention:
                x = self.attention(x)  # N×c×8×8, every position mixed with every other
            maps.append(x)
        local = x  # N×channels×4×4
        for i, block in enumerate(self.head):
            x = block(x)
            if i < len(self.head) - 1:
                x = F.leaky_relu(x, slope, inplace=True)
        pooled = x.amax(dim=(2, 3))  # N×channels; the activation after the max (see ConvBN.downsample)
        if len(self.head) > 0:
            pooled = F.leaky_relu(pooled, slope)
        return EncoderOutput(self.mu(pooled), self.logvar(pooled), local, pooled, maps[-2])
