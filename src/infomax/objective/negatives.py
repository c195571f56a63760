"""In-batch negatives: a permutation π of the batch pairs example i with example π(i).

`derangement` (the default) never pairs an example with itself; it is drawn uniformly from
all derangements of n (permutations without fixed points) by rejection: a uniform random
permutation is accepted when it has no fixed point, which happens with probability ≈ 1/e,
so about 2.7 draws are needed on average. `shuffle_permutation` is the reference's plain
random shuffle, which pairs an example with itself with probability 1/n per example.

Permutations are drawn on the generator's device (CPU when no generator is given) and then
moved to `device`; for a batch-sized index that costs nothing and needs no GPU sync.
"""

from __future__ import annotations

import torch
from torch import Tensor

from infomax.errors import InfomaxError

NEGATIVES = ("derangement", "shuffle")


def shuffle_permutation(
    n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> Tensor:
    """A uniform random permutation of 0..n-1 (may have fixed points). Long tensor of shape n."""
    if n < 1:
        raise InfomaxError(f"cannot permute a batch of {n}")
    return _to(torch.randperm(n, generator=generator, device=_draw_device(generator)), device)


def derangement(
    n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> Tensor:
    """A permutation of 0..n-1 with no fixed point, uniform over all derangements of n."""
    if n < 2:
        raise InfomaxError(f"a batch of {n} has no in-batch negatives: use a batch size of at least 2")
    draw_device = _draw_device(generator)
    identity = torch.arange(n, device=draw_device)
    while True:
        perm = torch.randperm(n, generator=generator, device=draw_device)
        if not bool((perm == identity).any()):
            return _to(perm, device)


def permutation(
    kind: str, n: int, *, generator: torch.Generator | None = None, device: torch.device | str | None = None
) -> Tensor:
    """The permutation named by `kind`: "derangement" or "shuffle"."""
    if kind == "derangement":
        return derangement(n, generator=generator, device=device)
    if kind == "shuffle":
        return shuffle_permutation(n, generator=generator, device=device)
    raise InfomaxError(f"negatives must be one of {', '.join(NEGATIVES)}, got '{kind}'")


def _draw_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _to(t: Tensor, device: torch.device | str | None) -> Tensor:
    return t if device is None else t.to(device, non_blocking=True)
