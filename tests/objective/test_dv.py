import math

import numpy as np
import pytest
import torch

from infomax.objective.dv import dv_loss


def np_dv(t_pos, t_neg):
    # float64, straight from the definition: −(E_pos[T] − log E_neg[e^T])
    return -(np.mean(t_pos) - math.log(np.mean(np.exp(t_neg))))


@pytest.mark.parametrize("shapes", [((64,), (64,)), ((8, 4, 4), (8, 16)), ((3, 2), (7,))])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_float64_formula(shapes, seed):
    rng = np.random.default_rng(seed)
    t_pos, t_neg = rng.normal(0, 3, shapes[0]), rng.normal(0, 3, shapes[1])
    got = dv_loss(torch.from_numpy(t_pos), torch.from_numpy(t_neg))
    assert got.dim() == 0 and got.dtype == torch.float64
    assert got.item() == pytest.approx(np_dv(t_pos, t_neg), rel=1e-12, abs=1e-12)
    got32 = dv_loss(torch.from_numpy(t_pos).float(), torch.from_numpy(t_neg).float())
    assert got32.item() == pytest.approx(np_dv(t_pos, t_neg), rel=1e-5, abs=1e-5)


def test_bfloat16_scores_are_upcast():
    rng = np.random.default_rng(2)
    t_pos, t_neg = torch.from_numpy(rng.normal(1, 2, 200)), torch.from_numpy(rng.normal(-1, 2, 300))
    got = dv_loss(t_pos.bfloat16(), t_neg.bfloat16())
    assert got.dtype == torch.float32
    want = np_dv(t_pos.bfloat16().double().numpy(), t_neg.bfloat16().double().numpy())
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert got.item() == pytest.approx(np_dv(t_pos.numpy(), t_neg.numpy()), abs=0.05)  # bf16 rounding


def test_only_the_multisets_matter():
    rng = np.random.default_rng(3)
    t_pos, t_neg = torch.from_numpy(rng.normal(0, 2, (4, 6))), torch.from_numpy(rng.normal(0, 2, (4, 6)))
    want = dv_loss(t_pos, t_neg)
    perm = torch.from_numpy(rng.permutation(24))
    torch.testing.assert_close(dv_loss(t_pos.reshape(24), t_neg.reshape(2, 3, 4)), want)
    torch.testing.assert_close(dv_loss(t_pos.flatten()[perm], t_neg.flatten()[perm].reshape(6, 4)), want)


@pytest.mark.parametrize("value", [0.0, -3.5, 12.0])
def test_zero_when_all_scores_equal(value):
    assert dv_loss(torch.full((5, 3), value), torch.full((7,), value)).item() == pytest.approx(0.0, abs=1e-6)


def test_gradient():
    t_pos = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    t_neg = torch.tensor([-0.5, 0.7], dtype=torch.float64, requires_grad=True)
    dv_loss(t_pos, t_neg).backward()
    # d/dT_pos = −1/n_pos; d/dT_neg = softmax(T_neg)
    torch.testing.assert_close(t_pos.grad, torch.full((3,), -1 / 3, dtype=torch.float64))
    torch.testing.assert_close(t_neg.grad, torch.softmax(t_neg.detach(), 0))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_scores_are_finite(sign):
    t_pos = torch.tensor([1e4, -1e4, 0.0]) * sign
    t_neg = torch.tensor([-1e4, 1e4, 3.0]) * sign
    t_pos.requires_grad_(True)
    t_neg.requires_grad_(True)
    loss = dv_loss(t_pos, t_neg)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(t_pos.grad).all() and torch.isfinite(t_neg.grad).all()
