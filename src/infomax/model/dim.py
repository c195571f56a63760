"""DIM: an encoder of p(z|x) and the Deep InfoMax objective that trains it (Hjelm et al. 2019,
with a VAE-style prior on z). The encoder comes from the registry (model/encoders.py) or is any
module a user passes; the critics belong to the objective (objective/loss.py)."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from infomax.errors import InfomaxError
from infomax.model.config import ModelConfig
from infomax.model.encoder import EncoderOutput
from infomax.model.encoders import as_encoder, build_encoder
from infomax.model.whitening import Whitening
from infomax.objective.config import ObjectiveConfig
from infomax.objective.loss import DIMLoss

# Where older checkpoints kept the critics: at the top of the model, now inside the objective.
_CRITICS = ("global_critic", "local_critic", "middle_critic", "local_local_critic", "prior_critic")


class DIM(nn.Module):
    def __init__(self, cfg: ModelConfig | None = None, objective: ObjectiveConfig | None = None,
                 encoder: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg = (cfg or ModelConfig()).validate()
        self.encoder = build_encoder(cfg) if encoder is None else as_encoder(encoder, cfg)
        enc, objective = self.encoder, objective or ObjectiveConfig()
        if objective.multiscale and enc.middle_channels is None:
            raise InfomaxError("objective.multiscale scores the map one block before C, which this encoder "
                               "does not return; use model.encoder = 'cnn' or objective.multiscale = false")
        self.objective = DIMLoss(objective, z_dim=enc.z_dim, local_channels=enc.local_channels,
                                 pooled_dim=enc.pooled_dim, middle_channels=enc.middle_channels, init=cfg.init)
        self.whitening = Whitening(enc.z_dim)  # y = whitened μ once fitted after training (train/whiten.py)

    def forward(self, x: Tensor) -> EncoderOutput:
        """The encoder's outputs for a batch x: N×C×H×W float."""
        return self.encoder(x)

    def loss(self, x: Tensor, x2: Tensor | None = None, *, generator: torch.Generator | None = None,
             gather: Callable[[Tensor, int], Tensor] | None = None,
             small: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss, terms) for a batch x (and a second view x2 of the same images): both views go
        through the encoder in one pass; small crops of the same images (M·N×C×s×s, crop-major,
        train/multicrop.py), when given, in a second pass. gather(t, views), when given, turns each
        feature of this process's rows into the global batch's (train/distributed.py gather_rows)."""
        views = 1 if x2 is None else 2
        out = self.encoder(x if x2 is None else torch.cat([x, x2]))
        crops = None if small is None else self.encoder(small)
        if gather is not None:  # only what the objective reads: pooled for "xz" pairs, middle for multiscale
            cfg = self.objective.cfg
            used = (True, True, True, cfg.global_pairing == "xz", cfg.multiscale)
            out = _gathered(out, used, views, gather)
            if crops is not None:  # the crops' codes only: their maps are never scored
                crops = _gathered(crops, (True, True, False, cfg.global_pairing == "xz", False),
                                  len(small) // len(x), gather)
        return self.objective(*out, views=views, generator=generator, small=crops)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith(prefix) and k[len(prefix):].split(".")[0] in _CRITICS]:
            state_dict[prefix + "objective." + key[len(prefix):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _gathered(out: EncoderOutput, used: tuple[bool, ...], views: int, gather) -> EncoderOutput:
    """The outputs the objective reads, each as the global batch's (the others None)."""
    return EncoderOutput(*(gather(t, views) if t is not None and u else None for t, u in zip(out, used)))
