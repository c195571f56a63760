import pytest
import torch
import torch.nn.functional as F

from infomax.errors import InfomaxError
from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder, EncoderOutput
from infomax.objective.loss import reparameterize


def naive_forward(enc: Encoder, x: torch.Tensor, training: bool, conv_bias: float = 0.0) -> EncoderOutput:
    """The architecture's order, literally: conv (+ bias, as Keras has) -> BN -> LeakyReLU -> max-pool
    (ceil), then the head convs, global max-pool, linear heads. Uses the module's parameters,
    updates nothing."""
    slope = enc.cfg.leaky_slope

    def conv(block, h):
        bias = conv_bias * torch.linspace(-1, 1, block.conv.out_channels, dtype=h.dtype)
        return F.conv2d(h, block.conv.weight, bias, padding=1)

    def bn(block, h):
        if training:
            mean = h.mean(dim=(0, 2, 3), keepdim=True)
            var = h.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        else:
            mean = block.bn.running_mean.view(1, -1, 1, 1)
            var = block.bn.running_var.view(1, -1, 1, 1)
        h = (h - mean) / torch.sqrt(var + block.bn.eps)
        return h * block.bn.weight.view(1, -1, 1, 1) + block.bn.bias.view(1, -1, 1, 1)

    maps = []
    for block in enc.down:
        h = conv(block, x)
        x = F.max_pool2d(F.leaky_relu(bn(block, h), slope), 2, 2, ceil_mode=True)
        maps.append(x)
    local = x
    for block in enc.head:
        x = F.leaky_relu(bn(block, conv(block, x)), slope)
    pooled = x.flatten(2).max(dim=2).values
    mu = pooled @ enc.mu.weight.T + enc.mu.bias
    logvar = pooled @ enc.logvar.weight.T + enc.logvar.bias
    return EncoderOutput(mu, logvar, local, pooled, maps[-2])


def randomize_bn(enc: Encoder, gen: torch.Generator) -> None:
    # scales of both signs, so that pooling before the activation is checked where it matters
    for m in enc.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen, dtype=m.weight.dtype))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=m.bias.dtype))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen, dtype=m.running_mean.dtype))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen, dtype=m.running_var.dtype) + 0.5)


@pytest.mark.parametrize("size, channels, blocks", [(28, 3, 3), (32, 3, 3), (64, 3, 4), (28, 1, 3), (13, 2, 2),
                                                    (96, 3, 5)])
def test_shapes(size, channels, blocks):
    cfg = ModelConfig(image_size=size, in_channels=channels)
    enc = Encoder(cfg)
    assert len(enc.down) == blocks
    out = enc(torch.randn(5, channels, size, size))
    assert out.mu.shape == (5, 256) and out.logvar.shape == (5, 256)
    side = -(-size // 2**blocks)  # 4, or 3 for sizes between the reference's ranges (96 -> 3)
    assert out.local.shape == (5, 256, side, side)
    assert out.pooled.shape == (5, 256)


def test_refused_size():
    with pytest.raises(InfomaxError, match="at least 9 pixels"):
        Encoder(ModelConfig(image_size=8))


@pytest.mark.parametrize("size", [16, 28])
@pytest.mark.parametrize("training", [True, False])
def test_matches_naive_literal_order_in_float64(size, training):
    gen = torch.Generator().manual_seed(size)
    torch.manual_seed(size)
    enc = Encoder(ModelConfig(image_size=size)).double()
    randomize_bn(enc, gen)
    enc.train(training)
    x = torch.randn(4, 3, size, size, generator=gen, dtype=torch.float64)
    expected = naive_forward(enc, x, training)
    got = enc(x)
    for name, e, g in zip(EncoderOutput._fields, expected, got):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10, msg=name)
    # and the gradients agree too
    if training:
        w = enc.down[1].conv.weight
        (ge,) = torch.autograd.grad(sum(t.square().sum() for t in expected), w)
        (gg,) = torch.autograd.grad(sum(t.square().sum() for t in enc(x)), w)
        torch.testing.assert_close(gg, ge, rtol=1e-9, atol=1e-9)


def test_conv_bias_before_batchnorm_would_cancel():
    gen = torch.Generator().manual_seed(3)
    torch.manual_seed(3)
    enc = Encoder(ModelConfig(image_size=16)).double()
    randomize_bn(enc, gen)
    x = torch.randn(4, 3, 16, 16, generator=gen, dtype=torch.float64)
    with_bias = naive_forward(enc, x, training=True, conv_bias=5.0)
    for name, e, g in zip(EncoderOutput._fields, with_bias, enc(x)):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-9, msg=name)


def test_weights_saved_with_conv_biases_load_exactly():
    torch.manual_seed(4)
    enc = Encoder(ModelConfig(image_size=16)).double()
    randomize_bn(enc, torch.Generator().manual_seed(4))
    enc.eval()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    # the same network with conv biases, as a checkpoint of the reference layout holds them
    state = enc.state_dict()
    for i, block in enumerate([*enc.down, *enc.head]):
        prefix = f"down.{i}." if i < len(enc.down) else f"head.{i - len(enc.down)}."
        bias = torch.linspace(-2, 3, block.conv.out_channels, dtype=torch.float64)
        state[prefix + "conv.bias"] = bias
        state[prefix + "bn.running_mean"] = state[prefix + "bn.running_mean"] + bias
    expected = naive_forward(enc, x, training=False)
    fresh = Encoder(ModelConfig(image_size=16)).double().eval()
    fresh.load_state_dict(state)  # strict: the biases are folded, not left over
    for name, e, g in zip(EncoderOutput._fields, expected, fresh(x)):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-10, msg=name)


def test_batchnorm_batch_stats_in_train_running_stats_in_eval():
    torch.manual_seed(0)
    enc = Encoder(ModelConfig(image_size=16, head_convs=0)).double()
    x = torch.randn(8, 3, 16, 16, dtype=torch.float64) * 3 + 1
    bn = enc.down[0].bn
    h = F.conv2d(x, enc.down[0].conv.weight, padding=1)
    enc.train()
    enc(x)
    # running averages, Keras momentum 0.99: r <- 0.99·r + 0.01·batch (unbiased variance)
    torch.testing.assert_close(bn.running_mean, 0.01 * h.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, 0.99 + 0.01 * h.var(dim=(0, 2, 3), unbiased=True))
    # in eval the output of one image does not depend on the rest of the batch
    enc.eval()
    alone = enc(x[:1])
    together = enc(x)
    torch.testing.assert_close(alone.mu, together.mu[:1])
    torch.testing.assert_close(alone.local, together.local[:1])
    enc.train()
    assert not torch.allclose(enc(x[:2]).mu[:1], enc(x).mu[:1])


def test_channels_last_gives_the_same_result():
    torch.manual_seed(0)
    enc = Encoder(ModelConfig())
    x = torch.randn(4, 3, 32, 32)
    ref = enc(x)
    enc_cl = enc.to(memory_format=torch.channels_last)
    got = enc_cl(x.contiguous(memory_format=torch.channels_last))
    for e, g in zip(ref, got):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)


def test_reparameterize_formula_and_statistics():
    gen = torch.Generator().manual_seed(1)
    mu = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    logvar = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    eps = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    expected = mu.numpy() + (logvar.exp().sqrt() * eps).numpy()
    torch.testing.assert_close(reparameterize(mu, logvar, eps).numpy(), expected)
    # z ~ N(μ, σ²)
    mu, logvar = torch.tensor([1.5]), torch.tensor([2.0])
    z = reparameterize(mu, logvar, torch.randn(200_000, 1, generator=gen))
    assert z.mean().item() == pytest.approx(1.5, abs=0.02)
    assert z.var().item() == pytest.approx(torch.e**2, rel=0.02)
