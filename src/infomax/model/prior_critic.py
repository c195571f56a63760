"""The discriminator of DIM's adversarial prior matching (Hjelm et al. 2019, sec. 3.3): an MLP
that scores a code vector with one logit, high for draws from the prior N(0, I) and low for the
encoder's z. The losses that train it and the encoder against it are in
infomax.objective.prior_matching."""

from __future__ import annotations

from torch import Tensor, nn


class PriorDiscriminator(nn.Module):
    def __init__(self, z_dim: int, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, 1))

    def forward(self, z: Tensor) -> Tensor:
        """z: N×z_dim -> logits N."""
        return self.net(z).squeeze(-1)
