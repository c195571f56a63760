import numpy as np
import pytest
import torch

from infomax.objective.jsd import jsd_loss


def np_jsd(t_pos, t_neg):
    # float64, straight from the definition: E_pos[log(1 + e^−T)] + E_neg[log(1 + e^T)]
    return np.mean(np.log1p(np.exp(-t_pos))) + np.mean(np.log1p(np.exp(t_neg)))


def np_reference_form(t_pos, t_neg, guard=0.0):
    # the reference's −mean(log σ(T_pos) + log(1 − σ(T_neg))), with its 1e-6 guard when asked
    sig = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    return -np.mean(np.log(sig(t_pos) + guard) + np.log(1 - sig(t_neg) + guard))


@pytest.mark.parametrize("shape", [(64,), (64, 4, 4), (3, 2)])
def test_matches_float64_formula(shape):
    rng = np.random.default_rng(0)
    t_pos, t_neg = rng.normal(0, 3, shape), rng.normal(0, 3, shape)
    got = jsd_loss(torch.from_numpy(t_pos), torch.from_numpy(t_neg))
    assert got.dim() == 0
    assert got.item() == pytest.approx(np_jsd(t_pos, t_neg), rel=1e-12)
    got32 = jsd_loss(torch.from_numpy(t_pos).float(), torch.from_numpy(t_neg).float())
    assert got32.item() == pytest.approx(np_jsd(t_pos, t_neg), rel=1e-6)


def test_equals_reference_binary_cross_entropy_for_moderate_logits():
    rng = np.random.default_rng(1)
    t_pos, t_neg = rng.uniform(-6, 6, 500), rng.uniform(-6, 6, 500)
    got = jsd_loss(torch.from_numpy(t_pos), torch.from_numpy(t_neg)).item()
    assert got == pytest.approx(np_reference_form(t_pos, t_neg), rel=1e-12)
    # the guards of the reference change it only slightly at these logits
    assert got == pytest.approx(np_reference_form(t_pos, t_neg, guard=1e-6), rel=1e-3)


def test_stable_for_extreme_logits():
    big = torch.tensor([1000.0, 80.0])
    assert jsd_loss(big, -big).item() == pytest.approx(0.0, abs=1e-30)
    assert jsd_loss(-big, big).item() == pytest.approx(2 * 540.0)  # mean(1000, 80) twice
    assert torch.isfinite(jsd_loss(torch.tensor([-1e30]), torch.tensor([1e30])))


def test_gradient():
    t_pos = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    t_neg = torch.tensor([-0.5, 0.7], dtype=torch.float64, requires_grad=True)
    jsd_loss(t_pos, t_neg).backward()
    # d/dT softplus(−T) = −σ(−T); d/dT softplus(T) = σ(T)
    torch.testing.assert_close(t_pos.grad, -torch.sigmoid(-t_pos.detach()) / 3)
    torch.testing.assert_close(t_neg.grad, torch.sigmoid(t_neg.detach()) / 2)


def test_bfloat16_logits_are_upcast():
    t = torch.linspace(-3, 3, 16)
    got = jsd_loss(t.bfloat16(), -t.bfloat16())
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(jsd_loss(t.bfloat16().float(), -t.bfloat16().float()).item(), rel=1e-6)


def test_chance_level_is_log_4():
    assert jsd_loss(torch.zeros(5), torch.zeros(5)).item() == pytest.approx(np.log(4))
