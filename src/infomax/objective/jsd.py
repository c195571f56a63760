"""Jensen-Shannon mutual-information estimator (Hjelm et al. 2019, "Learning deep
representations by mutual information estimation and maximization", eq. 4; Nowozin et al.
2016, f-GAN).

    L_JSD = E_pos[softplus(−T)] + E_neg[softplus(T)]

which is the binary cross-entropy of a critic telling positive pairs (drawn from the joint)
from negative pairs (drawn from the product of marginals):
    −log σ(T_pos) − log(1 − σ(T_neg)) = softplus(−T_pos) + softplus(T_neg).
The softplus form is exact and stable for any logit; the reference adds 1e-6 inside both logs.
Minimizing it maximizes the JSD lower bound on I(X; Z): Î_JSD = −L_JSD.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def jsd_loss(t_pos: Tensor, t_neg: Tensor) -> Tensor:
    """mean(softplus(−t_pos)) + mean(softplus(t_neg)); logits of any shape, computed in at
    least float32 (bf16 logits from autocast are upcast). Returns a scalar."""
    t_pos, t_neg = _at_least_float32(t_pos), _at_least_float32(t_neg)
    return F.softplus(-t_pos).mean() + F.softplus(t_neg).mean()


def _at_least_float32(t: Tensor) -> Tensor:
    return t.float() if t.element_size() < 4 else t
