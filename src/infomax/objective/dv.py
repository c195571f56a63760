"""Donsker-Varadhan mutual-information estimator (Belghazi et al. 2018, "Mutual Information
Neural Estimation" (MINE); Hjelm et al. 2019, eq. 2):

    Î_DV = E_pos[T] − log E_neg[e^T]  ≤  I(X; Z)

with the expectations taken over positive pairs (drawn from the joint) and negative pairs
(drawn from the product of marginals). The loss is L_DV = −Î_DV. The log-mean-exp is computed
stably as logsumexp over all negative scores minus log(count). Only the multisets of positive
and negative scores matter, not their shapes. Unlike MINE, no moving average corrects the bias
of the minibatch gradient of the log term.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from infomax.objective.jsd import _at_least_float32


def dv_loss(t_pos: Tensor, t_neg: Tensor) -> Tensor:
    """−(mean(t_pos) − log mean(exp(t_neg))); scores of any shapes (non-empty), computed in at
    least float32 (bf16 scores from autocast are upcast). Returns a scalar."""
    t_pos, t_neg = _at_least_float32(t_pos), _at_least_float32(t_neg)
    log_mean_exp = torch.logsumexp(t_neg.flatten(), dim=0) - math.log(t_neg.numel())
    return log_mean_exp - t_pos.mean()
