"""KL divergence of the encoder's Gaussian q(z|x) = N(μ, diag σ²) to the prior N(0, I)
(Kingma & Welling 2014, "Auto-Encoding Variational Bayes", appendix B):

    KL(N(μ, σ²) ‖ N(0, I)) = −½ · Σ_j (1 + log σ_j² − μ_j² − σ_j²)   per example.
"""

from __future__ import annotations

from torch import Tensor

REDUCTIONS = ("mean", "batchmean")


def kl_to_standard_normal(mu: Tensor, logvar: Tensor, reduction: str = "mean") -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) for μ, log σ²: N×D, reduced to a scalar.

    reduction="mean" (the reference, preset "seed"): −½·mean(1 + log σ² − μ² − σ²) over batch
    AND dimensions, i.e. the per-example KL divided by D. "batchmean": the per-example KL
    summed over dimensions, averaged over the batch (D times "mean").
    Computed in at least float32.
    """
    if mu.element_size() < 4:
        mu, logvar = mu.float(), logvar.float()
    elementwise = 1 + logvar - mu.square() - logvar.exp()  # N×D
    if reduction == "mean":
        return -0.5 * elementwise.mean()
    if reduction == "batchmean":
        return -0.5 * elementwise.sum(dim=-1).mean()
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got '{reduction}'")
