"""A CIFAR-style ResNet-18 backbone: image -> (local feature map, pooled vector).

ResNet (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016) in the
variant the paper uses for CIFAR-10 and that self-supervised benchmarks (lightly, solo-learn)
train on 32 px images: a 3×3 stride-1 stem convolution and no max-pool, instead of ImageNet's
7×7 stride-2 stem and max-pool. For a 32×32 input and width w (64 by default), NCHW:

    x                                                    N×3×32×32
    stem: 3×3 conv (stride 1) -> BN -> ReLU              N×w×32×32
    stage 1: 2 BasicBlocks, w channels,   stride 1       N×w×32×32
    stage 2: 2 BasicBlocks, 2w channels,  stride 2       N×2w×16×16
    stage 3: 2 BasicBlocks, 4w channels,  stride 2       N×4w×8×8
    stage 4: 2 BasicBlocks, 8w channels,  stride 2       N×8w×4×4 = local
    global average pool                                  N×8w     = pooled

A BasicBlock computes  out = ReLU(BN(conv3×3(ReLU(BN(conv3×3_stride(x))))) + shortcut(x)),
where the shortcut is x itself, or a 1×1 stride-s conv + BN where the shape changes
(option B of the paper). There is no fc layer: the wrapper adds its own heads.

Image size rule. The stages divide the side by 8 (each 3×3 stride-2 convolution with padding 1
maps a side s to ⌈s/2⌉), so the local map is ⌈S/8⌉ on a side. It should stay between 4 and 8,
the small map the local critic scores. For S ≤ 64 the stem keeps stride 1 (S = 25…64 gives
4×4…8×8); larger images get d extra halvings in the stem, the fewest that bring the side to 8
or less: the stem convolution takes stride 2, and each further halving is a 3×3 stride-2
max-pool with padding 1 (ImageNet's). The local side is then ⌈S / 2^(3+d)⌉: 96 px -> 6×6,
128 -> 8×8, 224 -> 7×7. Images under 25 px would give a map under 4×4 and are refused.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from infomax.errors import InfomaxError

MIN_LOCAL_SIDE = 4  # smallest side of the local feature map
MAX_LOCAL_SIDE = 8  # largest; bigger images are halved in the stem until the map fits
STAGE_STRIDES = (1, 2, 2, 2)
BLOCKS_PER_STAGE = (2, 2, 2, 2)
MIN_IMAGE_SIZE = (MIN_LOCAL_SIDE - 1) * 8 + 1  # 25: ⌈25/8⌉ = 4


def stem_halvings(image_size: int) -> int:
    """d, the number of stride-2 steps in the stem: the smallest d >= 0 with
    ⌈image_size / 2^(3+d)⌉ <= MAX_LOCAL_SIDE. Raises InfomaxError for images under 25 px."""
    if image_size < MIN_IMAGE_SIZE:
        raise InfomaxError(
            f"resnet18 needs images of at least {MIN_IMAGE_SIZE} px (its local feature map is the image "
            f"divided by 8 and must be at least {MIN_LOCAL_SIDE}×{MIN_LOCAL_SIDE}); got {image_size} px. "
            f"Resize the images to 32 px or more, or use the default cnn encoder (13 px and up)"
        )
    d = 0
    while math.ceil(image_size / 2 ** (3 + d)) > MAX_LOCAL_SIDE:
        d += 1
    return d


def local_side(image_size: int) -> int:
    """Side of the local feature map for a square image of `image_size` px: ⌈S / 2^(3+d)⌉."""
    return math.ceil(image_size / 2 ** (3 + stem_halvings(image_size)))


class BasicBlock(nn.Module):
    """ReLU(BN(conv3×3(ReLU(BN(conv3×3_stride(x))))) + shortcut(x)); N×c_in×H×W -> N×c_out×⌈H/s⌉×⌈W/s⌉.

    The convolutions have no bias: the BatchNorm after each one subtracts the channel mean."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()  # identity
        if stride != 1 or c_in != c_out:  # projection: 1×1 stride-s conv + BN
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(c_out),
            )

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.bn1(self.conv1(x)))  # N×c_out×⌈H/s⌉×⌈W/s⌉
        h = self.bn2(self.conv2(h))  # N×c_out×⌈H/s⌉×⌈W/s⌉
        return F.relu(h + self.shortcut(x))


class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 backbone. forward(x: N×in_channels×S×S) -> (local, pooled) with
    local N×8w×h×h (h = local_side(S), 4 at 32 px) and pooled N×8w, the mean of local over
    its h·h positions. `local_channels` and `pooled_dim` are both 8w (512 at width 64)."""

    def __init__(self, in_channels: int = 3, image_size: int = 32, width: int = 64):
        super().__init__()
        if in_channels < 1:
            raise InfomaxError(f"resnet18: in_channels must be >= 1, got {in_channels}")
        if width < 1:
            raise InfomaxError(f"resnet18: width must be >= 1 (64 is the standard ResNet-18), got {width}")
        self.in_channels, self.image_size, self.width = in_channels, image_size, width
        self.halvings = stem_halvings(image_size)  # raises for images under 25 px
        self.local_side = local_side(image_size)
        self.local_channels = self.pooled_dim = 8 * width

        stem_stride = 2 if self.halvings > 0 else 1
        self.stem_conv = nn.Conv2d(in_channels, width, kernel_size=3, stride=stem_stride, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        self.stem_pools = self.halvings - 1 if self.halvings > 0 else 0  # 3×3 stride-2 max-pools after it
        stages, c_in = [], width
        for i, (blocks, stride) in enumerate(zip(BLOCKS_PER_STAGE, STAGE_STRIDES)):
            c_out = width * 2**i
            layers = [BasicBlock(c_in, c_out, stride)]
            layers += [BasicBlock(c_out, c_out, 1) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layers))
            c_in = c_out
        self.stages = nn.ModuleList(stages)
        kaiming_init_(self)

    def check_input(self, x: Tensor) -> None:
        want = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise InfomaxError(
                f"resnet18 was built for N×{want[0]}×{want[1]}×{want[2]} images, got a tensor of shape "
                f"{tuple(x.shape)}; build it with the images' channels and size "
                f"(ResNet18(in_channels=..., image_size=...)) or resize the images"
            )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        self.check_input(x)
        h = F.relu(self.stem_bn(self.stem_conv(x)))  # N×w×S×S (N×w×⌈S/2⌉×⌈S/2⌉ for S > 64)
        for _ in range(self.stem_pools):
            h = F.max_pool2d(h, kernel_size=3, stride=2, padding=1)  # halves the side, ⌈s/2⌉
        for stage in self.stages:
            h = stage(h)  # w, 2w, 4w, 8w channels; side s, s/2, s/4, s/8
        local = h  # N×8w×h×h
        pooled = local.mean(dim=(2, 3))  # N×8w, global average pool
        return local, pooled


def kaiming_init_(module: nn.Module) -> nn.Module:
    """torchvision's ResNet init, in place: conv weights ~ N(0, 2 / fan_out) with
    fan_out = k²·C_out (He et al. 2015, mode "fan_out", ReLU gain); BatchNorm scale 1, shift 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module
