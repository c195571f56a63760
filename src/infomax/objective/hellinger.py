"""Squared-Hellinger mutual-information estimator (Nowozin et al. 2016, "f-GAN: Training
generative neural samplers using variational divergence minimization", table 2, with the
output activation g(v) = 1 − e^{−v}; the "H2" measure of the DIM code, Hjelm et al. 2019).

The variational f-divergence bound E_pos[g(V)] − E_neg[f*(g(V))] for f(u) = (√u − 1)², whose
conjugate is f*(t) = t / (1 − t), becomes with T = V

    Î_H2 = E_pos[1 − e^{−T}] − E_neg[e^{T} − 1]  ≤  ∫(√p − √q)²,

a lower bound on the squared Hellinger distance between the joint p and the product of
marginals q (not on I(X; Z) itself; maximizing it increases the dependence all the same).
The loss is

    L_H2 = −Î_H2 = E_pos[e^{−T}] + E_neg[e^{T}] − 2,

which is 0 at T ≡ 0. Only the multisets of positive and negative scores matter, not their
shapes. The loss is unbounded above: in float32 it overflows to inf once a positive score falls
below ≈ −88 or a negative score rises above ≈ 88.
"""

from __future__ import annotations

from torch import Tensor

from infomax.objective.jsd import _at_least_float32


def hellinger_loss(t_pos: Tensor, t_neg: Tensor) -> Tensor:
    """mean(exp(−t_pos)) + mean(exp(t_neg)) − 2; scores of any shapes, computed in at least
    float32 (bf16 scores from autocast are upcast). Returns a scalar."""
    t_pos, t_neg = _at_least_float32(t_pos), _at_least_float32(t_neg)
    return (-t_pos).exp().mean() + t_neg.exp().mean() - 2
