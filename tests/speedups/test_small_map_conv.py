import pytest
import torch
import torch.nn.functional as F

from infomax import speedups
from infomax.model.config import ModelConfig
from infomax.model.encoder import ConvBN
from infomax.speedups.small_map_conv import (conv3x3_swapped_weight_grad, conv3x3_weight_grad,
                                             swapped_weight_grad_helps)


def loop_weight_grad(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """∂L/∂W[o, i, a, b] = Σ_n Σ_(u,v) g[n, o, u, v] · x_pad[n, i, u + a, v + b], tap by tap."""
    xp = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[-2:]
    out = torch.zeros(g.shape[1], x.shape[1], 3, 3, dtype=x.dtype)
    for a in range(3):
        for b in range(3):
            out[:, :, a, b] = torch.einsum("nouv,niuv->oi", g, xp[:, :, a:a + h, b:b + w])
    return out


@pytest.mark.parametrize("n,cin,cout,h,w", [(5, 3, 4, 4, 4), (2, 6, 7, 3, 5), (4, 2, 3, 8, 8), (3, 4, 4, 1, 1)])
def test_weight_grad_matches_tap_by_tap_sum(n, cin, cout, h, w):
    torch.manual_seed(0)
    x, g = torch.randn(n, cin, h, w, dtype=torch.float64), torch.randn(n, cout, h, w, dtype=torch.float64)
    torch.testing.assert_close(conv3x3_weight_grad(x, g), loop_weight_grad(x, g), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("channels_last", [False, True])
def test_gradients_equal_conv2d_in_float64(channels_last):
    torch.manual_seed(1)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(6, 5, 4, 4, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    w = torch.randn(7, 5, 3, 3, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_()
    g = torch.randn(6, 7, 4, 4, dtype=torch.float64)
    y = conv3x3_swapped_weight_grad(x, w)
    gx, gw = torch.autograd.grad(y, [x, w], g)
    y_ref = F.conv2d(x, w, padding=1)
    gx_ref, gw_ref = torch.autograd.grad(y_ref, [x, w], g)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, gw_ref, rtol=1e-12, atol=1e-12)
    assert gw.stride() == w.stride()  # in the weight's layout: autograd stores it without a copy


def test_weight_gradient_alone_when_the_input_is_frozen():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    (gw,) = torch.autograd.grad(conv3x3_swapped_weight_grad(x, w).sum(), [w])
    torch.testing.assert_close(gw, loop_weight_grad(x, torch.ones(2, 4, 4, 4, dtype=torch.float64)))


def test_used_only_for_small_maps_in_cpu_bf16_training():
    small, large = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 8, 8)
    assert not swapped_weight_grad_helps(small)  # fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert swapped_weight_grad_helps(small)
        assert not swapped_weight_grad_helps(large)
        with torch.no_grad():
            assert not swapped_weight_grad_helps(small)


def graph_has(fn, name: str) -> bool:
    seen, todo = set(), [fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if type(fn).__name__ == name:
            return True
        todo.extend(f for f, _ in fn.next_functions)
    return False


def test_convbn_bf16_step_matches_the_plain_convolution():
    """A head ConvBN switched by speedups.apply takes the swapped path under CPU bf16 autocast;
    its output and both gradients agree with conv2d's own backward in the same precision, and
    the weight gradient stays float32 like the parameter's."""
    torch.manual_seed(2)
    block = ConvBN(16, 16, ModelConfig()).to(memory_format=torch.channels_last)
    speedups.apply(block, precision="bf16", device=torch.device("cpu"), compile_kernels=False)
    x = torch.randn(8, 16, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_()
    g = torch.randn(8, 16, 4, 4)
    results = []
    for swapped in (True, False):
        block.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = block(x) if swapped else block.bn(block.conv(x))
        (gx,) = torch.autograd.grad(y, [x], g, retain_graph=True)
        y.backward(g)
        results.append((y.float(), gx.float(), block.conv.weight.grad.clone()))
        assert graph_has(y.grad_fn, "_SwappedWeightGradConvBackward") == swapped
    (y1, gx1, gw1), (y2, gx2, gw2) = results
    assert gw1.dtype == torch.float32
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    torch.testing.assert_close(gx1, gx2, rtol=0, atol=0)
    torch.testing.assert_close(gw1, gw2, rtol=2e-2, atol=2e-2 * gw2.abs().max().item())
