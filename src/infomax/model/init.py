"""Weight initialization schemes: Keras 2 defaults (the reference) or PyTorch defaults."""

from __future__ import annotations

from torch import nn


def keras_init_(module: nn.Module) -> nn.Module:
    """Keras 2 defaults, in place: Glorot-uniform weights and zero biases for every conv and
    dense layer, i.e. W ~ U(-b, b) with b = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010),
    where a k×k conv has fan_in = k²·C_in and fan_out = k²·C_out. BatchNorm starts at
    scale 1, shift 0, running mean 0, running variance 1 (the same in both frameworks)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_parameters()
    return module


def torch_init_(module: nn.Module) -> nn.Module:
    """PyTorch defaults, in place: each layer's own reset_parameters() (Kaiming-uniform with
    a = sqrt(5) for weights, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for biases)."""
    for m in module.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return module


INITIALIZERS = {"keras": keras_init_, "torch": torch_init_}


def init_weights_(module: nn.Module, scheme: str) -> nn.Module:
    """Initialize `module` in place with the named scheme ("keras" or "torch")."""
    return INITIALIZERS[scheme](module)
