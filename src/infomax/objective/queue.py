"""A queue of past codes as more negatives of the global term (MoCo, He et al. 2020, sec. 3.2).

InfoNCE's bound on the mutual information is at most log(K + 1) for K negatives, and the batch
limits K to N − 1. The queue keeps the global critic's embedding ψ(z) of the last `size` codes
(of earlier steps, detached: no gradient reaches them) and scores each anchor φ(a_i) against
all of them as well, so each positive competes with N − 1 + K negatives for the cost of one
N×K matrix product:

    t_neg[i] = [T(a_i, z_j) for j ≠ i]  ++  [⟨u_i, k⟩ for every key k in the queue]

with u_i = φ(a_i) scaled as the critic scales it (1/√d, or to unit length over τ). The newest keys
replace the oldest (a ring buffer). Until the queue has filled, its empty slots score −∞:
they add nothing to the logsumexp. The keys and their count are buffers, so checkpoints hold
them and `--resume` continues with the same queue.

    queue = NegativeQueue(4096, dim=256)
    t_neg = torch.cat([t_neg, queue.scores(u)], dim=-1)   # u = φ(a) as the critic scales it
    queue.push(v.detach())                                # v = ψ(z) of this step's codes
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NegativeQueue(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        if size < 1:
            raise ValueError(f"a queue needs size >= 1, got {size}")
        self.register_buffer("keys", torch.zeros(size, dim))  # K×d, ψ(z) of past codes
        self.register_buffer("count", torch.zeros((), dtype=torch.long))  # keys pushed so far

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    def scores(self, u: Tensor) -> Tensor:
        """⟨u_i, k⟩ for every key k: N×K, −∞ where a slot has not been filled yet."""
        table = u @ self.keys.to(u.dtype).T  # N×K
        filled = torch.arange(self.size, device=u.device) < self.count
        return table.masked_fill(~filled, float("-inf"))

    @torch.no_grad()
    def push(self, keys: Tensor) -> None:
        """Add M keys (M×d), replacing the oldest; the newest `size` are kept when M > size."""
        pushed = keys.shape[0]
        keys = keys[-self.size :].to(self.keys.dtype)
        # the t-th key ever pushed (from 0) goes to slot t mod size
        slots = (self.count + (pushed - keys.shape[0]) + torch.arange(keys.shape[0], device=keys.device)) % self.size
        # new tensors, not writes into the old: the step's backward still reads the keys it scored
        self.keys = self.keys.index_put((slots,), keys)
        self.count = self.count + pushed
