"""The mutual-information estimators by name: the choices of the `estimator` config key.

Each maps (t_pos, t_neg) to a scalar loss to minimize. "jsd" (the reference's), "dv" and
"hellinger" depend only on the multisets of positive and negative scores; "infonce" also on
which negatives belong to which positive (the last dim of t_neg).
"""

from __future__ import annotations

from infomax.objective.dv import dv_loss
from infomax.objective.hellinger import hellinger_loss
from infomax.objective.infonce import infonce_loss
from infomax.objective.jsd import jsd_loss

ESTIMATORS = {"jsd": jsd_loss, "infonce": infonce_loss, "dv": dv_loss, "hellinger": hellinger_loss}
