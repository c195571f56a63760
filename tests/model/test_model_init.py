import math

import pytest
import torch
from torch import nn

from infomax.model.config import ModelConfig
from infomax.model.dim import DIM


def fans(w: torch.Tensor) -> tuple[int, int]:
    receptive = w[0, 0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


def layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_keras_init_is_glorot_uniform_with_zero_biases():
    torch.manual_seed(0)
    model = DIM(ModelConfig())
    found = layers(model)
    assert len(found) == 3 + 2 + 2 + 4 + 4  # down convs, head convs, μ/logσ², two critics
    for m in found:
        fan_in, fan_out = fans(m.weight)
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = m.weight.detach()
        assert w.abs().max() <= bound
        # U(-b, b) has standard deviation b/√3; PyTorch's default would be √3 times smaller
        # or larger depending on the fans, and never centred on this value for every layer.
        if w.numel() >= 1000:
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
            assert w.abs().max() > 0.95 * bound
        if isinstance(m, nn.Conv2d):
            assert m.bias is None  # every conv is followed by BatchNorm
        else:
            assert torch.count_nonzero(m.bias) == 0


def test_keras_batchnorm_settings():
    model = DIM(ModelConfig())
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 5
    for bn in bns:
        assert bn.momentum == 0.01 and bn.eps == 1e-3  # Keras: momentum 0.99, epsilon 1e-3
        assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
        assert torch.all(bn.running_mean == 0) and torch.all(bn.running_var == 1)


def test_torch_init_differs():
    torch.manual_seed(0)
    model = DIM(ModelConfig(init="torch", bn_momentum=0.1, bn_eps=1e-5))
    conv1 = model.encoder.down[0].conv
    fan_in, fan_out = fans(conv1.weight)
    # kaiming_uniform(a=√5): bound 1/√fan_in = 0.19 for a 3×3×3 input, Glorot's is 0.0997
    assert conv1.weight.abs().max() > math.sqrt(6.0 / (fan_in + fan_out))
    assert conv1.weight.abs().max() <= 1 / math.sqrt(fan_in)
    assert conv1.bias is None  # cancelled by the BatchNorm that follows
    assert torch.count_nonzero(model.encoder.mu.bias) > 0
    assert torch.count_nonzero(model.objective.global_critic.layers[0].bias) > 0  # the critics too
    bn = model.encoder.down[0].bn
    assert bn.momentum == 0.1 and bn.eps == 1e-5
