"""Encode-and-dot critics: T(a, b) = ⟨φ(a), ψ(b)⟩ / √d (the DIM code's and AMDIM's critic,
Hjelm et al. 2019 sec. 3 and Bachman et al. 2019).

Each side is embedded once by a small MLP (1×1 convolutions for the local map, written as
Linear layers over channels-last rows), so scoring every pair of a batch costs one matrix
product instead of one MLP pass per pair. That makes "every other image of the batch is a
negative" affordable: `matrix` returns the whole N×N (×positions) score table.

With a temperature τ > 0 the score is the cosine similarity instead, T(a, b) = cos(φ(a), ψ(b)) / τ
(the normalized form of SimCLR, Chen et al. 2020, eq. 1): bounded in [−1/τ, 1/τ].

Global:   a N×A (z or the pooled feature) against z N×Z    -> scores N×N
Local:    z N×Z against every position p of C N×C×H×W      -> scores N×N×HW
Position: every position of C against every position of C' -> scores N×HW×N×HW (local–local MI)
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn


def embedding(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear: the per-side embedding φ or ψ."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, d_out))


class _DotCritic(nn.Module):
    """The two embeddings φ, ψ and how their outputs are scaled before the dot product:
    u = φ(a)/√d, v = ψ(b) (τ = 0), or u = φ(a)/(‖φ(a)‖·τ), v = ψ(b)/‖ψ(b)‖ (τ > 0)."""

    def __init__(self, a_dim: int, b_dim: int, hidden: int = 256, dim: int = 256, temperature: float = 0.0):
        super().__init__()
        self.phi, self.psi = embedding(a_dim, hidden, dim), embedding(b_dim, hidden, dim)
        self.scale, self.temperature = 1 / math.sqrt(dim), temperature

    def sides(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        u, v = self.phi(a), self.psi(b)  # …×d each
        if self.temperature > 0:
            return F.normalize(u, dim=-1) / self.temperature, F.normalize(v, dim=-1)
        return u * self.scale, v


def _rows(local: Tensor) -> Tensor:
    """N×C×H×W -> N×HW×C (a view when channels_last)."""
    return local.flatten(2).transpose(1, 2)


class DotGlobalCritic(_DotCritic):
    def forward(self, a: Tensor, b: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
        """t_pos[i] = T(a_i, b_i), t_neg[i] = T(a_i, b_perm[i]); both N."""
        u, v = self.sides(a, b)  # N×d, N×d
        return (u * v).sum(-1), (u * v[perm]).sum(-1)

    def matrix(self, a: Tensor, b: Tensor) -> Tensor:
        """scores[i, j] = T(a_i, b_j): N×N."""
        return F.linear(*self.sides(a, b))


class DotLocalCritic(_DotCritic):
    def forward(self, z: Tensor, local: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
        """t_pos[i, y, x] = T(z_i, C_i[y, x]), t_neg[i, y, x] = T(z_i, C_perm[i][y, x]); both N×H×W."""
        n, _, h, w = local.shape
        u, v = self.sides(z.unsqueeze(1), _rows(local))  # N×1×d, N×HW×d
        return (u * v).sum(-1).view(n, h, w), (u * v[perm]).sum(-1).view(n, h, w)

    def matrix(self, z: Tensor, local: Tensor) -> Tensor:
        """scores[i, j, p] = T(z_i, C_j[p]) for every position p (row-major): M×N×HW for M codes."""
        u, v = self.sides(z, _rows(local))  # M×d, N×HW×d
        return F.linear(u, v.reshape(-1, v.shape[-1])).view(z.shape[0], local.shape[0], -1)


class DotPositionCritic(_DotCritic):
    """T(C_i[p], C'_j[q]) between positions of two local maps (local–local MI): both sides
    embedded by 1×1-convolution MLPs, scored by dot product / √d (or cosine / τ)."""

    def __init__(self, c_dim: int, hidden: int = 256, dim: int = 256, temperature: float = 0.0):
        super().__init__(c_dim, c_dim, hidden, dim, temperature)

    def matrix(self, local: Tensor, other: Tensor) -> Tensor:
        """scores[i, p, j, q] = T(local_i[p], other_j[q]): N×HW×N×HW."""
        n, hw = local.shape[0], local.shape[2] * local.shape[3]
        u, v = self.sides(_rows(local), _rows(other))  # N×HW×d each
        return F.linear(u.reshape(n * hw, -1), v.reshape(n * hw, -1)).view(n, hw, n, hw)
