"""The CIFAR-style ResNet-18 backbone against float64 formulas and hand counts."""

import math

import pytest
import torch
import torch.nn.functional as F

from infomax.errors import InfomaxError
from infomax.model.resnet import BasicBlock, ResNet18


def hand_param_count(in_channels: int, w: int) -> int:
    """Parameters of the CIFAR ResNet-18 without fc, summed by hand (3×3 conv: 9·c_in·c_out,
    1×1 conv: c_in·c_out, BatchNorm: 2c):
      stem         9·in·w + 2w
      stage 1 (w)  2 blocks × (9w² + 9w² + 4w)                               =   36w² +  8w
      stage 2 (2w) 18w² + 36w² + 2w² (1×1) + 12w, then 72w² + 8w             =  128w² + 20w
      stage 3 (4w) 72w² + 144w² + 8w² + 24w, then 288w² + 16w                =  512w² + 40w
      stage 4 (8w) 288w² + 576w² + 32w² + 48w, then 1152w² + 32w             = 2048w² + 80w
    total 2724w² + (9·in + 150)·w."""
    return 2724 * w * w + (9 * in_channels + 150) * w


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def bn64(h: torch.Tensor, bn: torch.nn.BatchNorm2d, training: bool) -> torch.Tensor:
    """BatchNorm by formula in float64: batch mean and biased variance in training, else the
    running statistics; then scale and shift."""
    if training:
        mean = h.mean(dim=(0, 2, 3), keepdim=True)
        var = ((h - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    else:
        mean = bn.running_mean.double().view(1, -1, 1, 1)
        var = bn.running_var.double().view(1, -1, 1, 1)
    scale, shift = bn.weight.double().view(1, -1, 1, 1), bn.bias.double().view(1, -1, 1, 1)
    return (h - mean) / torch.sqrt(var + bn.eps) * scale + shift


def block64(b: BasicBlock, x: torch.Tensor, training: bool) -> torch.Tensor:
    stride = b.conv1.stride[0]
    h = F.relu(bn64(F.conv2d(x, b.conv1.weight.double(), stride=stride, padding=1), b.bn1, training))
    h = bn64(F.conv2d(h, b.conv2.weight.double(), padding=1), b.bn2, training)
    if len(b.shortcut) == 0:
        short = x
    else:
        short = bn64(F.conv2d(x, b.shortcut[0].weight.double(), stride=stride), b.shortcut[1], training)
    return F.relu(h + short)


def resnet64(net: ResNet18, x: torch.Tensor, training: bool) -> tuple[torch.Tensor, torch.Tensor]:
    h = F.conv2d(x.double(), net.stem_conv.weight.double(), stride=net.stem_conv.stride[0], padding=1)
    h = F.relu(bn64(h, net.stem_bn, training))
    for _ in range(net.stem_pools):
        h = F.max_pool2d(h, 3, 2, 1)
    for stage in net.stages:
        for b in stage:
            h = block64(b, h, training)
    return h, h.mean(dim=(2, 3))


def randomize_bn_(m: torch.nn.Module, seed: int = 0) -> None:
    """Scales and shifts of both signs and non-trivial running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in m.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                c = bn.num_features
                bn.weight.copy_(torch.randn(c, generator=g))
                bn.bias.copy_(torch.randn(c, generator=g))
                bn.running_mean.copy_(torch.randn(c, generator=g))
                bn.running_var.copy_(torch.rand(c, generator=g) + 0.5)


@pytest.mark.parametrize("in_channels, width", [(3, 64), (1, 8), (3, 16), (5, 4)])
def test_param_count_matches_hand_formula(in_channels, width):
    net = ResNet18(in_channels=in_channels, width=width)
    assert n_params(net) == hand_param_count(in_channels, width)
    assert net.local_channels == net.pooled_dim == 8 * width


def test_standard_width_has_the_published_count():
    # the CIFAR ResNet-18 with its 10-way fc (512·10 + 10) is reported at 11,173,962 parameters
    assert hand_param_count(3, 64) == 11_173_962 - 5_130 == 11_168_832
    assert n_params(ResNet18()) == 11_168_832
    assert n_params(ResNet18(image_size=96)) == 11_168_832  # the stem's stride adds nothing


@pytest.mark.parametrize("stride, c_in, c_out", [(1, 4, 4), (2, 3, 5), (1, 3, 6)])
@pytest.mark.parametrize("training", [True, False])
def test_basic_block_matches_float64_formula(stride, c_in, c_out, training):
    torch.manual_seed(0)
    b = BasicBlock(c_in, c_out, stride)
    assert (len(b.shortcut) == 0) == (stride == 1 and c_in == c_out)
    randomize_bn_(b)
    b.train(training)
    x = torch.randn(3, c_in, 5, 5)
    before = [t.clone() for t in b.buffers()]
    ref = block64(b, x.double(), training)
    out = b(x)
    assert out.shape == (3, c_out, math.ceil(5 / stride), math.ceil(5 / stride))
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    assert (ref == 0).any() and (ref > 0).any()  # the ReLU mattered
    if not training:  # eval reads the running statistics and leaves them alone
        assert all(torch.equal(a, t) for a, t in zip(before, b.buffers()))


def test_train_mode_updates_running_statistics_by_formula():
    torch.manual_seed(1)
    b = BasicBlock(3, 4, 2).train()
    randomize_bn_(b)
    x = torch.randn(4, 3, 6, 6).double()
    bns = (b.bn1, b.bn2, b.shortcut[1])
    before = [(bn.running_mean.double().clone(), bn.running_var.double().clone()) for bn in bns]
    b(x.float())
    # the inputs of the three BatchNorms, in float64
    y1 = F.conv2d(x, b.conv1.weight.double(), stride=2, padding=1)  # N×4×3×3
    y2 = F.conv2d(F.relu(bn64(y1, b.bn1, True)), b.conv2.weight.double(), padding=1)
    y3 = F.conv2d(x, b.shortcut[0].weight.double(), stride=2)  # the shortcut's 1×1 conv
    for bn, y, (m0, v0) in zip(bns, (y1, y2, y3), before):
        mean, var = y.mean(dim=(0, 2, 3)), y.var(dim=(0, 2, 3), unbiased=True)  # running var is unbiased
        torch.testing.assert_close(bn.running_mean.double(), 0.9 * m0 + 0.1 * mean)
        torch.testing.assert_close(bn.running_var.double(), 0.9 * v0 + 0.1 * var)
        assert bn.num_batches_tracked.item() == 1


def test_eval_mode_is_per_image_and_train_mode_is_per_batch():
    torch.manual_seed(2)
    net = ResNet18(width=4)
    randomize_bn_(net)
    x = torch.randn(4, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        alone, _ = net(x[:1])
        batch, _ = net(x)
    torch.testing.assert_close(alone, batch[:1], atol=1e-5, rtol=1e-5)
    net.train()
    with torch.no_grad():
        alone, _ = net(x[:2])
        batch, _ = net(x)
    assert (alone - batch[:2]).abs().max() > 1e-2  # batch statistics: other images change the output


@pytest.mark.parametrize("image_size, training", [(32, True), (32, False), (28, True), (96, True), (130, False)])
def test_forward_matches_float64_formula(image_size, training):
    torch.manual_seed(3)
    net = ResNet18(in_channels=2, image_size=image_size, width=4).double()
    randomize_bn_(net)
    net.train(training)
    x = torch.randn(3, 2, image_size, image_size, dtype=torch.float64)
    local, pooled = net(x)
    ref_local, ref_pooled = resnet64(net, x, training)
    torch.testing.assert_close(local, ref_local, atol=1e-9, rtol=1e-9)
    torch.testing.assert_close(pooled, ref_pooled, atol=1e-9, rtol=1e-9)


def test_pooled_is_the_mean_of_local_over_positions():
    torch.manual_seed(4)
    net = ResNet18(width=8)
    local, pooled = net(torch.randn(6, 3, 32, 32))
    assert local.shape == (6, 64, 4, 4) and pooled.shape == (6, 64)
    by_hand = local.double().sum(dim=(2, 3)) / 16
    torch.testing.assert_close(pooled.double(), by_hand, atol=1e-6, rtol=1e-6)
    assert by_hand.std() > 0.1  # not a degenerate all-equal output


@pytest.mark.parametrize("size, side", [(25, 4), (28, 4), (32, 4), (33, 5), (64, 8), (65, 5), (96, 6),
                                        (128, 8), (129, 5), (224, 7), (256, 8)])
def test_local_map_side(size, side):
    # hand table: S <= 64 -> ⌈S/8⌉; 65-128 -> ⌈S/16⌉; 129-256 -> ⌈S/32⌉
    net = ResNet18(image_size=size, width=2).eval()
    with torch.no_grad():
        local, pooled = net(torch.randn(1, 3, size, size))
    assert local.shape == (1, 16, side, side) and pooled.shape == (1, 16)
    assert net.local_side == side


def test_kaiming_init_as_torchvision():
    net = ResNet18()
    w = net.stages[3][1].conv2.weight.detach().double().flatten()  # 512·512·9 values
    std = math.sqrt(2 / (9 * 512))  # N(0, 2 / fan_out), fan_out = 3·3·512
    assert abs(w.mean().item()) < 1e-4
    assert abs(w.std().item() / std - 1) < 0.005
    kurtosis = (((w - w.mean()) / w.std()) ** 4).mean().item()
    assert abs(kurtosis - 3) < 0.05  # normal (a uniform init has 1.8)
    proj = net.stages[1][0].shortcut[0].weight.detach().double()  # 1×1, fan_out = 128
    assert abs(proj.std().item() / math.sqrt(2 / 128) - 1) < 0.05
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))


@pytest.mark.parametrize("size", [24, 16, 1, 0])
def test_small_image_size_is_refused(size):
    with pytest.raises(InfomaxError, match=r"at least 25 px.*got %d px" % size):
        ResNet18(image_size=size)


@pytest.mark.parametrize("shape", [(2, 3, 28, 28), (2, 1, 32, 32), (3, 32, 32), (2, 3, 32, 28)])
def test_input_of_another_shape_is_refused(shape):
    net = ResNet18(width=2)
    with pytest.raises(InfomaxError, match=r"built for N×3×32×32 images.*%s" % re_shape(shape)):
        net(torch.randn(shape))


def re_shape(shape) -> str:
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize("kw, what", [({"width": 0}, "width"), ({"in_channels": 0}, "in_channels")])
def test_bad_widths_are_refused(kw, what):
    with pytest.raises(InfomaxError, match=f"{what} must be >= 1"):
        ResNet18(**kw)
