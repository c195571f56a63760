"""Critics T(a, b): an MLP on the concatenation [a, b] that scores a pair with one logit.

Positives pair row i with itself, T([a_i, b_i]); negatives pair it with another row of the
batch, T([a_i, b_π(i)]) for a permutation π. The first layer is split by input,
W·[a; b] + c = W_a·a + W_b·b + c, so each half is projected once per row and the negatives
reuse the projection of b through π instead of projecting a second, shuffled concatenation.
The result is the same function as the naive concat-then-MLP (tests check it in float64).

Global critic (reference pairing "zz"): a = z, b = z, so negatives are [z_i, z_π(i)].
Global critic ("xz", the paper's T(x, z)): a = pooled feature, b = z.
Local critic: a = z tiled over the 4×4 positions, b = C, scored at every position
(1×1 convolutions, here Linear layers over channels-last rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn



def concat_mlp_scores(layers: list[nn.Linear], a: Tensor, b: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
    """Scores of an MLP critic T = L_k ∘ relu ∘ … ∘ relu ∘ L_1 on concatenated pairs:

        t_pos[i] = T([a_i, b_i]),   t_neg[i] = T([a_i, b_perm[i]])

    a: N×…×A, b: N×…×B, broadcastable against each other over the middle dims (e.g. a
    N×1×A against b N×16×B for a vector tiled over positions). perm: N long.
    Returns t_pos, t_neg with the broadcast shape without the last dim.
    """
    first = layers[0]
    w_a, w_b = first.weight.split([a.shape[-1], b.shape[-1]], dim=1)
    ha = F.linear(a, w_a, first.bias)  # N×…×H, once per row of a
    hb = F.linear(b, w_b)  # N×…×H, once per row of b, shared by positives and negatives
    n = hb.shape[0]
    index = torch.cat([torch.arange(n, device=hb.device), perm.to(hb.device)])  # 2N: identity, then π
    h = F.relu(hb.index_select(0, index) + torch.cat([ha, ha]))  # 2N×…×H: [positives; negatives]
    for layer in layers[1:-1]:
        h = F.relu(layer(h))
    t = layers[-1](h).squeeze(-1)  # 2N×…
    return t[:n], t[n:]


def mlp(d_in: int, hidden: int, depth: int = 3) -> nn.ModuleList:
    """`depth` hidden Linear layers of width `hidden` (ReLU between) and a one-logit output."""
    dims = [d_in] + [hidden] * depth + [1]
    return nn.ModuleList(nn.Linear(i, o) for i, o in zip(dims[:-1], dims[1:]))


class GlobalCritic(nn.Module):
    """T([a, b]) on vectors: 3 hidden layers of 256 with ReLU, one logit (Hjelm et al. 2019)."""

    def __init__(self, a_dim: int, b_dim: int, hidden: int = 256):
        super().__init__()
        self.layers = mlp(a_dim + b_dim, hidden)

    def forward(self, a: Tensor, b: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
        # a: N×A, b: N×B -> t_pos, t_neg: N
        return concat_mlp_scores(list(self.layers), a, b, perm)


class LocalCritic(nn.Module):
    """T([z, C_p]) at every position p of the local map: z tiled over the positions and
    concatenated (z first, as the reference does) with C, then 1×1 convolutions 3 × 256 with
    ReLU and one logit. Negatives pair z_i with C of image perm[i]."""

    def __init__(self, z_dim: int, c_dim: int, hidden: int = 256):
        super().__init__()
        self.layers = mlp(z_dim + c_dim, hidden)

    def forward(self, z: Tensor, local: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
        # z: N×Z, local: N×C×H×W -> t_pos, t_neg: N×H×W
        n, c, h, w = local.shape
        rows = local.flatten(2).transpose(1, 2)  # N×HW×C (a view when local is channels_last)
        t_pos, t_neg = concat_mlp_scores(list(self.layers), z.unsqueeze(1), rows, perm)
        return t_pos.view(n, h, w), t_neg.view(n, h, w)
