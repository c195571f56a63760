"""DIM: the Deep InfoMax model (Hjelm et al. 2019) with a VAE-style prior on z: an encoder and
the global and local critics. The objective that ties them together is in infomax.objective."""

from __future__ import annotations

from torch import Tensor, nn

from infomax.model.config import ModelConfig
from infomax.model.critics import build_critics
from infomax.model.encoder import Encoder, EncoderOutput
from infomax.model.init import init_weights_


class DIM(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        cfg = (cfg or ModelConfig()).validate()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.global_critic, self.local_critic = build_critics(cfg)
        init_weights_(self.global_critic, cfg.init)
        init_weights_(self.local_critic, cfg.init)

    def forward(self, x: Tensor) -> EncoderOutput:
        """The encoder's outputs for a batch x: N×C×H×W float."""
        return self.encoder(x)
