"""The DIM objective: JSD mutual-information estimator, KL prior term, in-batch negatives."""

from infomax.objective.jsd import jsd_loss
from infomax.objective.kl import kl_to_standard_normal
from infomax.objective.negatives import derangement, shuffle_permutation
from infomax.objective.terms import LOSS_WEIGHTS, dim_terms, weighted_loss

__all__ = [
    "LOSS_WEIGHTS",
    "derangement",
    "dim_terms",
    "jsd_loss",
    "kl_to_standard_normal",
    "shuffle_permutation",
    "weighted_loss",
]
