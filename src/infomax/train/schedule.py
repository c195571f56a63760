"""Learning-rate schedules: the factor that multiplies the base learning rate at a point of a run.

    constant (the reference):  lr_t = lr
    cosine:                    lr_t = lr · ½ · (1 + cos(π · p)),   p ∈ [0, 1] the fraction of the
                               run done (SGDR, Loshchilov & Hutter 2017, eq. 5, one cycle, η_min = 0)
    wsd:                       lr_t = lr · min(1, (1 − p) / WSD_TAIL): constant, then linear to 0 over
                               the last WSD_TAIL of the run (warmup-stable-decay without the warm-up:
                               MiniCPM, Hu et al. 2024; a 20 % tail matches cosine, Hägele et al. 2024)

The run ends at whichever comes first of its step count and its time budget, so p is the larger
of the two fractions: steps done / total steps, and seconds trained / budget seconds. With a time
budget the schedule follows the clock; with steps or epochs alone it is a function of the step
and `--resume` reproduces it exactly.
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine", "wsd")
WSD_TAIL = 0.2  # the fraction of the run over which wsd decays


def run_fraction(step: int, total_steps: int, seconds: float, budget_seconds: float | None) -> float:
    """p = max(step / total_steps, seconds / budget_seconds), clipped to [0, 1]."""
    p = step / total_steps
    if budget_seconds is not None:
        p = max(p, seconds / budget_seconds)
    return min(max(p, 0.0), 1.0)


def lr_factor(schedule: str, p: float) -> float:
    """The multiplier of the base lr at run fraction p (see the module docstring)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "wsd":
        return min(1.0, (1.0 - p) / WSD_TAIL)
    raise ValueError(f"unknown lr schedule '{schedule}'; choose one of: {', '.join(SCHEDULES)}")
