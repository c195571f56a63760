"""The DIM objective: mutual-information estimators (JSD, InfoNCE, DV, squared Hellinger),
KL prior term, in-batch negatives."""

from infomax.objective.dv import dv_loss
from infomax.objective.estimators import ESTIMATORS
from infomax.objective.hellinger import hellinger_loss
from infomax.objective.infonce import all_pairs, infonce_loss
from infomax.objective.jsd import jsd_loss
from infomax.objective.kl import kl_to_standard_normal
from infomax.objective.negatives import derangement, shuffle_permutation
from infomax.objective.terms import LOSS_WEIGHTS, dim_terms, weighted_loss

__all__ = [
    "ESTIMATORS",
    "LOSS_WEIGHTS",
    "all_pairs",
    "derangement",
    "dim_terms",
    "dv_loss",
    "hellinger_loss",
    "infonce_loss",
    "jsd_loss",
    "kl_to_standard_normal",
    "shuffle_permutation",
    "weighted_loss",
]
