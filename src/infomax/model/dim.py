"""DIM: the Deep InfoMax model (Hjelm et al. 2019) with a VAE-style prior on z: an encoder and
the global and local critics (and, for adversarial prior matching, the prior's discriminator).
The objective that ties them together is in infomax.objective."""

from __future__ import annotations

from torch import Tensor, nn

from infomax.model.config import ModelConfig
from infomax.model.critics import build_critics
from infomax.model.dot_critic import DotPositionCritic
from infomax.model.encoder import Encoder, EncoderOutput
from infomax.model.init import init_weights_
from infomax.model.prior_critic import PriorDiscriminator


class DIM(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        cfg = (cfg or ModelConfig()).validate()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.global_critic, self.local_critic = build_critics(cfg)
        if cfg.multiscale:  # z against the map one block before C
            self.middle_critic = build_critics(cfg, c_dim=cfg.widths[-2])[1]
        if cfg.local_local:  # positions of C against positions of C
            self.local_local_critic = DotPositionCritic(cfg.channels, cfg.critic_hidden, cfg.critic_hidden, cfg.temperature)
        if cfg.prior == "adversarial":  # tells N(0, I) draws from the encoder's z
            self.prior_critic = PriorDiscriminator(cfg.z_dim, cfg.critic_hidden)
        for critic in self.critics():
            init_weights_(critic, cfg.init)

    def critics(self) -> list[nn.Module]:
        names = ("global_critic", "local_critic", "middle_critic", "local_local_critic", "prior_critic")
        return [getattr(self, n) for n in names if hasattr(self, n)]

    def forward(self, x: Tensor) -> EncoderOutput:
        """The encoder's outputs for a batch x: N×C×H×W float."""
        return self.encoder(x)
