"""The encoder registry, and GaussianEncoder: any backbone that maps images to a local feature map
becomes an encoder of p(z|x) that DIMLoss trains.

An encoder, for infomax, is an nn.Module whose forward(x: N×C×H×W float) returns an
EncoderOutput (μ, log σ², local map C, pooled vector, middle map or None) and that has the
attributes z_dim, local_channels, pooled_dim and middle_channels (None when it has no middle map).

    cnn        the reference's encoder (model/encoder.py), the default
    resnet18   the CIFAR-style ResNet-18 of He et al. 2016 (model/resnet.py) with Gaussian heads
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder, EncoderOutput


class GaussianEncoder(nn.Module):
    """backbone -> (local map, pooled) -> μ = Linear(pooled), log σ² = Linear(pooled).

    The backbone's forward returns the local map N×C×h×w, or a tuple (local map, pooled N×P);
    without a pooled vector the map's global average is used. Its channel counts are read from
    the attributes local_channels / pooled_dim when it has them, else from one forward pass of
    a 2-image batch of zeros (image_size, in_channels) in eval mode.
    """

    def __init__(self, backbone: nn.Module, z_dim: int, *, image_size: int = 32, in_channels: int = 3):
        super().__init__()
        self.backbone, self.z_dim, self.middle_channels = backbone, z_dim, None
        local_channels = getattr(backbone, "local_channels", None)
        pooled_dim = getattr(backbone, "pooled_dim", None)
        if local_channels is None or pooled_dim is None:
            local, pooled = self._features(self._probe(backbone, image_size, in_channels))
            local_channels, pooled_dim = local.shape[1], pooled.shape[1]
        self.local_channels, self.pooled_dim = int(local_channels), int(pooled_dim)
        self.mu = nn.Linear(self.pooled_dim, z_dim)
        self.logvar = nn.Linear(self.pooled_dim, z_dim)

    @staticmethod
    def _probe(backbone: nn.Module, image_size: int, in_channels: int):
        was_training = backbone.training
        try:
            with torch.no_grad():
                return backbone.eval()(torch.zeros(2, in_channels, image_size, image_size))
        except Exception as exc:
            raise ValueError(f"the encoder failed on a {in_channels}×{image_size}×{image_size} batch: {exc}") from exc
        finally:
            backbone.train(was_training)

    @staticmethod
    def _features(out) -> tuple[Tensor, Tensor]:
        local, pooled = out if isinstance(out, (tuple, list)) else (out, None)
        if local.dim() != 4:
            raise ValueError(f"the encoder must return a local feature map N×C×h×w, got shape {tuple(local.shape)}")
        return local, local.mean(dim=(2, 3)) if pooled is None else pooled

    def forward(self, x: Tensor) -> EncoderOutput:
        local, pooled = self._features(self.backbone(x))  # N×C×h×w, N×P
        return EncoderOutput(self.mu(pooled), self.logvar(pooled), local, pooled, None)


def resnet18(cfg: ModelConfig) -> GaussianEncoder:
    from infomax.model.resnet import ResNet18

    backbone = ResNet18(cfg.in_channels, image_size=cfg.image_size)  # the standard widths 64-128-256-512
    return GaussianEncoder(backbone, cfg.z_dim, image_size=cfg.image_size, in_channels=cfg.in_channels)


ENCODER_BUILDERS = {"cnn": Encoder, "resnet18": resnet18}


def build_encoder(cfg: ModelConfig) -> nn.Module:
    """The registry's encoder named by cfg.encoder."""
    if cfg.encoder not in ENCODER_BUILDERS:
        raise ValueError(f"model.encoder {cfg.encoder!r} is not in the registry; pass the module itself")
    return ENCODER_BUILDERS[cfg.encoder](cfg)


def as_encoder(module: nn.Module, cfg: ModelConfig) -> nn.Module:
    """A user's module as an encoder: used as is when it has the encoder attributes, else wrapped."""
    if all(hasattr(module, a) for a in ("z_dim", "local_channels", "pooled_dim", "middle_channels")):
        return module
    return GaussianEncoder(module, cfg.z_dim, image_size=cfg.image_size, in_channels=cfg.in_channels)
