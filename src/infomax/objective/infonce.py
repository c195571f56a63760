"""InfoNCE mutual-information estimator (van den Oord et al. 2018, "Representation learning
with contrastive predictive coding", eq. 4; the "NCE" measure of Hjelm et al. 2019).

Each positive score T⁺ competes with its own K negative scores T⁻_1 … T⁻_K:

    L_NCE = E[ −log( e^{T⁺} / (e^{T⁺} + Σ_k e^{T⁻_k}) ) ]
          = E[ logaddexp(T⁺, logsumexp_k T⁻_k) − T⁺ ],

the cross-entropy of picking the positive among K + 1 candidates. It bounds the mutual
information from below: I(X; Z) ≥ log(K + 1) − L_NCE (so the bound never exceeds log(K + 1)).
Unlike the other estimators it depends on which negatives belong to which positive: they lie
along the last dim of t_neg.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from infomax.objective.jsd import _at_least_float32

FLOOR = 60.0  # negatives further below their row's largest are raised to it (see infonce_loss)


def infonce_loss(t_pos: Tensor, t_neg: Tensor) -> Tensor:
    """mean over t_pos of −log(e^{t_pos} / (e^{t_pos} + Σ_k e^{t_neg[..., k]})).

    t_pos: shape S (any). t_neg: shape S' + (K,), where S' broadcasts to S; positives that share
    their negatives share them through broadcasting (e.g. t_pos N×P with t_neg N×1×K: every
    position p of image i against the same K negatives), and the logsumexp over the negatives
    is taken once, before broadcasting. Computed in at least float32 (bf16 scores from
    autocast are upcast); a negative more than FLOOR below the largest of its row counts at
    that floor (_floored: under e^-60 of the sum either way). Returns a scalar.
    """
    t_pos, t_neg = _at_least_float32(t_pos), _at_least_float32(t_neg)
    if t_neg.dim() == 0 or t_neg.shape[-1] == 0:
        raise ValueError(f"t_neg needs a last dim of K >= 1 negatives, got shape {tuple(t_neg.shape)}")
    lse_neg = torch.logsumexp(_floored(t_neg), dim=-1)  # S'
    try:
        fits = torch.broadcast_shapes(t_pos.shape, lse_neg.shape) == t_pos.shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"t_neg of shape {tuple(t_neg.shape)} does not fit t_pos of shape "
                         f"{tuple(t_pos.shape)}: need S' + (K,) with S' broadcasting to S")
    return (torch.logaddexp(t_pos, lse_neg) - t_pos).mean()


def _floored(t_neg: Tensor) -> Tensor:
    """t_neg with every score more than FLOOR below its row's largest raised to that floor, in value
    only (the gradient passes as it is). Such a score adds under e^-60 of the row's sum of
    exponentials (nothing in float32), and the floor keeps exp off its slow path for inputs that
    underflow, which rows of thousands of negatives spread over hundreds (a queue) hit on a CPU."""
    with torch.no_grad():
        value = t_neg.detach()
        lift = (value.amax(-1, keepdim=True) - FLOOR - value).clamp(min=0)  # 0 for all but the far ones
        lift = torch.nan_to_num(lift, nan=0.0, posinf=0.0)  # −∞ (an empty slot) stays −∞
    return t_neg + lift


def all_pairs(scores: Tensor) -> tuple[Tensor, Tensor]:
    """(t_pos, t_neg) for infonce_loss from a square score matrix of all pairs in a batch.

    scores[i, j, ...] = T(a_i, b_j, ...), of shape N×N×R (R: trailing dims, possibly none).
    t_pos = scores[i, i, ...], of shape N×R. t_neg holds for each i every scores[i, j, ...] with
    j ≠ i, flattened into the last dim and shared by all of i's positives:
      scores N×N    (global) → t_pos N,    t_neg N×(N−1);
      scores N×N×P  (local)  → t_pos N×P,  t_neg N×1×((N−1)·P);
    in general t_neg N×1×…×1×((N−1)·prod(R)), with one 1 per trailing dim.
    """
    if scores.dim() < 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be N×N×…, got shape {tuple(scores.shape)}")
    n, rest = scores.shape[0], scores.shape[2:]
    idx = torch.arange(n, device=scores.device)
    t_pos = scores[idx, idx]  # N×R
    off_diagonal = idx[:, None] != idx[None, :]  # N×N
    t_neg = scores[off_diagonal]  # N·(N−1)×R, row i's j ≠ i in order
    t_neg = t_neg.reshape(n, *(1 for _ in rest), (n - 1) * math.prod(rest))
    return t_pos, t_neg


def position_pairs(scores: Tensor, same_view: bool) -> tuple[Tensor, Tensor]:
    """(t_pos, t_neg) of local–local MI from scores[i, p, j, q] = T(C_i[p], C'_j[q]): N×P×N×P.

    Positives of anchor (i, p): the positions q of the same image i (q ≠ p when C' is C itself,
    `same_view`); its negatives: every position of every other image, shared by its positives.
      t_pos N×P×Q (Q = P − 1 or P),   t_neg N×P×1×((N−1)·P).
    """
    n, p = scores.shape[:2]
    idx = torch.arange(n, device=scores.device)
    t_pos = scores[idx, :, idx, :]  # N×P×P: [i, p, q]
    if same_view:
        t_pos = t_pos[:, ~torch.eye(p, dtype=torch.bool, device=scores.device)].view(n, p, p - 1)
    off_diagonal = idx[:, None] != idx[None, :]  # N×N
    t_neg = scores.permute(0, 2, 1, 3)[off_diagonal]  # N(N−1)×P×P: [(i, j), p, q]
    t_neg = t_neg.view(n, n - 1, p, p).transpose(1, 2).reshape(n, p, 1, (n - 1) * p)
    return t_pos, t_neg
