import math

import numpy as np
import pytest
import torch

from infomax.objective.hellinger import hellinger_loss


def np_hellinger(t_pos, t_neg):
    # float64, from the f-GAN bound with g(v) = 1 − e^{−v}, f*(t) = t / (1 − t):
    # −(E_pos[g(T)] − E_neg[f*(g(T))])
    g = lambda v: 1 - np.exp(-v)  # noqa: E731
    f_star = lambda t: t / (1 - t)  # noqa: E731
    return -(np.mean(g(t_pos)) - np.mean(f_star(g(t_neg))))


@pytest.mark.parametrize("shapes", [((64,), (64,)), ((8, 4, 4), (8, 16)), ((3, 2), (7,))])
@pytest.mark.parametrize("seed", [0, 1])
def test_matches_float64_formula(shapes, seed):
    rng = np.random.default_rng(seed)
    t_pos, t_neg = rng.normal(0, 2, shapes[0]), rng.normal(0, 2, shapes[1])
    got = hellinger_loss(torch.from_numpy(t_pos), torch.from_numpy(t_neg))
    assert got.dim() == 0 and got.dtype == torch.float64
    assert got.item() == pytest.approx(np_hellinger(t_pos, t_neg), rel=1e-10, abs=1e-10)
    got32 = hellinger_loss(torch.from_numpy(t_pos).float(), torch.from_numpy(t_neg).float())
    assert got32.item() == pytest.approx(np_hellinger(t_pos, t_neg), rel=1e-5, abs=1e-5)


def test_bfloat16_scores_are_upcast():
    rng = np.random.default_rng(2)
    t_pos, t_neg = torch.from_numpy(rng.normal(1, 1, 200)), torch.from_numpy(rng.normal(-1, 1, 300))
    got = hellinger_loss(t_pos.bfloat16(), t_neg.bfloat16())
    assert got.dtype == torch.float32
    want = np_hellinger(t_pos.bfloat16().double().numpy(), t_neg.bfloat16().double().numpy())
    assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-5)
    assert got.item() == pytest.approx(np_hellinger(t_pos.numpy(), t_neg.numpy()), abs=0.05)  # bf16 rounding


def test_only_the_multisets_matter():
    rng = np.random.default_rng(3)
    t_pos, t_neg = torch.from_numpy(rng.normal(0, 2, (4, 6))), torch.from_numpy(rng.normal(0, 2, (4, 6)))
    want = hellinger_loss(t_pos, t_neg)
    perm = torch.from_numpy(rng.permutation(24))
    torch.testing.assert_close(hellinger_loss(t_pos.reshape(24), t_neg.reshape(2, 3, 4)), want)
    torch.testing.assert_close(hellinger_loss(t_pos.flatten()[perm], t_neg.flatten()[perm].reshape(6, 4)), want)


def test_zero_at_zero_scores():
    assert hellinger_loss(torch.zeros(5, 3), torch.zeros(7)).item() == 0.0


def test_bounded_below_by_minus_two():
    # a perfect critic (T_pos → ∞, T_neg → −∞) reaches the infimum −2
    assert hellinger_loss(torch.tensor([50.0]), torch.tensor([-50.0])).item() == pytest.approx(-2.0)
    assert hellinger_loss(torch.tensor([1e4]), torch.tensor([-1e4])).item() == -2.0


def test_gradient():
    t_pos = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    t_neg = torch.tensor([-0.5, 0.7], dtype=torch.float64, requires_grad=True)
    hellinger_loss(t_pos, t_neg).backward()
    torch.testing.assert_close(t_pos.grad, -torch.exp(-t_pos.detach()) / 3)
    torch.testing.assert_close(t_neg.grad, torch.exp(t_neg.detach()) / 2)


def test_extreme_scores_are_finite_where_the_loss_is():
    # scores of ±1e4 on the critic's side of the bound: loss and gradients finite
    t_pos = torch.tensor([1e4, 0.0, 3.0], requires_grad=True)
    t_neg = torch.tensor([-1e4, 0.0, -3.0], requires_grad=True)
    loss = hellinger_loss(t_pos, t_neg)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(t_pos.grad).all() and torch.isfinite(t_neg.grad).all()
    # the other side: exp(1e4) is not representable, in float32 or float64
    assert math.isinf(hellinger_loss(torch.tensor([-1e4]), torch.tensor([0.0])).item())
