"""Partial whitening of the kept feature: y = (μ − m)·W with W = C^(−p) on the span of the data.

After training, the codes μ of plain train images have a mean m and a covariance
C = V diag(λ) Vᵀ (eigenvectors V, eigenvalues λ). A few directions carry most of the variance,
so cosine similarities are decided by them. Scaling each principal direction by λ^(−p)

    W = V diag(λ_k^(−p)) Vᵀ  for λ_k > FLOOR · max λ,  0 for the others,

evens them out: p = 1/2 is PCA whitening (y has the identity covariance; for retrieval vectors,
Jégou & Chum 2012, "Negative evidences and co-occurrences in image retrieval: the benefit of PCA
and whitening"), p = 0 leaves μ as it is. W is symmetric, so y keeps μ's basis and dimension.
The power 1/4 raised weighted kNN on CIFAR-10 by 2.7–3.5 points, and kNN 1 and P@10 with it, on
Tiny ImageNet by 0.8–1.3, with mAP@100 within −0.8 … +0.1; 1/2 lost on most protocols
(docs/better.md#whitened-features). On μ averaged with the image's mirror (model/mirror.py),
`recommended` whitens at 0.3, chosen on held-out train images (docs/better.md#the-mirror).
Directions below FLOOR (those μ = Linear(pooled) cannot reach when z_dim exceeds the pooled
width) are dropped, not amplified. No labels are used.

`Whitening` holds m and W as buffers of the model (saved in its checkpoint), unfitted until
`fit` is called: then embed, search and serve give y instead of μ.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from infomax.choices import require

POWER = 0.25  # the exponent p
FLOOR = 1e-6  # eigenvalues below FLOOR · max λ count as 0


def moments(sums: Tensor, outer: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """(mean, covariance) in float64 from Σ μ (z) and Σ μμᵀ (z×z) over `count` codes:
    m = Σμ / n, C = Σμμᵀ / n − m mᵀ (the biased covariance)."""
    mean = sums.double() / count
    return mean, outer.double() / count - torch.outer(mean, mean)


def check_power(power: float, name: str) -> None:
    """The power p must lie in (0, 1]; `name` is how the caller spells it (a key or a flag)."""
    require(0 < power <= 1, f"{name} = {power} must be in (0, 1] (0.25 evens μ's directions out, 0.5 whitens them)")


def kept(lam: Tensor, floor: float = FLOOR) -> Tensor:
    """bool mask of the eigenvalues λ the whitening keeps: λ > floor · max λ."""
    return lam > floor * lam.max().clamp(min=0)


def whitening_matrix(cov: Tensor, power: float = POWER, floor: float = FLOOR) -> Tensor:
    """W = V diag(λ^(−power)) Vᵀ over the eigenvalues λ > floor · max λ of the symmetric `cov`
    (z×z); float64."""
    lam, vec = torch.linalg.eigh(cov.double())
    keep = kept(lam, floor)
    vec = vec[:, keep]
    return (vec * lam[keep].pow(-power)) @ vec.T


def whiten(mu: Tensor, mean: Tensor, matrix: Tensor) -> Tensor:
    """y = (μ − m)·W: N×z in μ's dtype (computed in float32 at least)."""
    dtype = torch.promote_types(mu.dtype, torch.float32)
    return ((mu.to(dtype) - mean.to(dtype)) @ matrix.to(dtype)).to(mu.dtype)


class Whitening(nn.Module):
    """m (z), W (z×z) and `power` (0 until fitted) as buffers; unfitted, m = 0 and W = I. Apply it
    with `whiten(μ, w.mean, w.matrix)` where `w.fitted` (the embedder checks once, not per batch)."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(z_dim))
        self.register_buffer("matrix", torch.eye(z_dim))
        self.register_buffer("power", torch.zeros(()))

    @property
    def fitted(self) -> bool:
        return bool(self.power > 0)

    @torch.no_grad()
    def fit(self, sums: Tensor, outer: Tensor, count: int, power: float = POWER) -> Tensor:
        """Set m and W from Σ μ, Σ μμᵀ over `count` codes (see `moments`); returns the eigenvalues
        λ of the covariance, largest first (float64)."""
        mean, cov = moments(sums, outer, count)
        self.mean.copy_(mean)
        self.matrix.copy_(whitening_matrix(cov, power))
        self.power.fill_(power)
        return torch.linalg.eigvalsh(cov).flip(0)

    @torch.no_grad()
    def reset(self) -> None:
        """Back to unfitted: y = μ."""
        self.mean.zero_()
        self.matrix.copy_(torch.eye(len(self.mean)))
        self.power.zero_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before whitening existed: unfitted
        for name, value in (("mean", self.mean), ("matrix", self.matrix), ("power", self.power)):
            state_dict.setdefault(prefix + name, value.detach().clone())
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
