import itertools
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from infomax.errors import InfomaxError
from infomax.objective.negatives import derangement, permutation, shuffle_permutation


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 512), seed=st.integers(0, 2**31 - 1))
def test_derangement_is_a_permutation_without_fixed_points(n, seed):
    perm = derangement(n, generator=torch.Generator().manual_seed(seed))
    assert perm.dtype == torch.long and perm.shape == (n,)
    assert torch.equal(perm.sort().values, torch.arange(n))
    assert not torch.any(perm == torch.arange(n))


def test_derangement_is_uniform_over_all_derangements():
    gen = torch.Generator().manual_seed(0)
    counts = Counter(tuple(derangement(4, generator=gen).tolist()) for _ in range(4500))
    all_derangements = {p for p in itertools.permutations(range(4)) if all(p[i] != i for i in range(4))}
    assert set(counts) == all_derangements  # 9 of them, not only the 6 four-cycles
    assert all(380 < c < 620 for c in counts.values())  # 500 each expected


def test_shuffle_may_have_fixed_points():
    gen = torch.Generator().manual_seed(0)
    perms = [shuffle_permutation(8, generator=gen) for _ in range(100)]
    assert all(torch.equal(p.sort().values, torch.arange(8)) for p in perms)
    assert any(torch.any(p == torch.arange(8)) for p in perms)
    assert torch.equal(shuffle_permutation(1), torch.tensor([0]))


def test_generator_makes_it_reproducible():
    a = derangement(64, generator=torch.Generator().manual_seed(7))
    b = derangement(64, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert torch.equal(
        permutation("shuffle", 64, generator=torch.Generator().manual_seed(7)),
        shuffle_permutation(64, generator=torch.Generator().manual_seed(7)),
    )


def test_device_argument():
    assert derangement(5, device="cpu").device.type == "cpu"
    assert derangement(5, device=torch.device("meta")).device.type == "meta"


def test_too_small_or_unknown():
    with pytest.raises(InfomaxError, match="at least 2"):
        derangement(1)
    with pytest.raises(InfomaxError):
        shuffle_permutation(0)
    with pytest.raises(InfomaxError, match="derangement, shuffle"):
        permutation("all", 8)
