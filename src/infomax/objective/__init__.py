"""The DIM objective: DIMLoss (one module: critics, estimator, negatives, weights), its config,
and its parts as pure functions: the mutual-information estimators (JSD, InfoNCE, DV, squared
Hellinger), the KL prior term and in-batch negatives."""

from infomax.objective.config import ObjectiveConfig
from infomax.objective.dv import dv_loss
from infomax.objective.estimators import ESTIMATORS
from infomax.objective.hellinger import hellinger_loss
from infomax.objective.infonce import all_pairs, infonce_loss
from infomax.objective.jsd import jsd_loss
from infomax.objective.kl import kl_to_standard_normal
from infomax.objective.loss import DIMLoss, Draws, reparameterize
from infomax.objective.negatives import derangement, shuffle_permutation

__all__ = [
    "DIMLoss",
    "Draws",
    "ESTIMATORS",
    "ObjectiveConfig",
    "all_pairs",
    "derangement",
    "dv_loss",
    "hellinger_loss",
    "infonce_loss",
    "jsd_loss",
    "kl_to_standard_normal",
    "reparameterize",
    "shuffle_permutation",
]
