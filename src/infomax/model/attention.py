"""Self-attention over the positions of a feature map (Zhang et al. 2019, "Self-Attention
Generative Adversarial Networks", sec. 3; the "attention structures" the DIM write-up suggests).

For a map x: N×C×H×W with its P = H·W positions as rows x_p:

    q_p = W_q x_p,  k_p = W_k x_p  (C/8 channels),   v_p = W_v x_p  (C channels)
    a_pr = softmax_r(q_p · k_r / √(C/8))             each position attends to every position
    y_p  = x_p + γ · Σ_r a_pr v_r

γ is a learned scalar that starts at 0, so the block starts as the identity and the encoder
learns how much non-local context to mix in. (SAGAN leaves out the 1/√d scaling; it is kept
here, as in every attention since Vaswani et al. 2017, so the logits stay of order 1.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SelfAttention(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        key = max(1, channels // 8)
        self.q, self.k = nn.Linear(channels, key, bias=False), nn.Linear(channels, key, bias=False)
        self.v = nn.Linear(channels, channels, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        rows = x.flatten(2).transpose(1, 2)  # N×P×C (a view when channels_last)
        y = F.scaled_dot_product_attention(self.q(rows), self.k(rows), self.v(rows))  # N×P×C
        y = y.transpose(1, 2).reshape(n, c, h, w)  # a view, laid out channels_last
        return x + self.gamma.to(y.dtype) * y
