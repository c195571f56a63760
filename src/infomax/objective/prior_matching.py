"""DIM's adversarial prior matching (Hjelm et al. 2019, sec. 3.3, eq. 7), the alternative to the
KL term: a discriminator D learns to tell draws v ~ N(0, I) from the encoder's codes z, and the
encoder learns to make its codes indistinguishable from the prior's:

    D:        min  E_v[softplus(−D(v))] + E_z[softplus(D(z))]      (the JSD estimator's loss)
    encoder:  min  E_z[softplus(−D(z))]                            (the non-saturating form of
                                                                     max log D(z), Goodfellow 2014)

Both losses come from one forward pass. The discriminator's loss sees z detached, and the
encoder's loss sees D's weights detached, so one backward pass gives each side the gradient
of its own loss only and one optimizer step updates both: the encoder against the current D,
D against the codes of the current encoder (the two players alternate within the step).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from infomax.objective.jsd import _at_least_float32, jsd_loss


def prior_matching_losses(discriminator: nn.Module, z: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
    """(encoder loss, discriminator loss) for codes z: N×d and prior draws N(0, I): M×d.

    The encoder loss mean(softplus(−D(z))) has no gradient for D's weights; the discriminator
    loss mean(softplus(−D(prior))) + mean(softplus(D(z))) has none for z.
    """
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    encoder_loss = F.softplus(-_at_least_float32(functional_call(discriminator, frozen, (z,)))).mean()
    discriminator_loss = jsd_loss(discriminator(prior), discriminator(z.detach()))
    return encoder_loss, discriminator_loss
