import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from infomax.objective.kl import kl_to_standard_normal


def random_gaussians(seed, n=32, d=16):
    gen = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=gen, dtype=torch.float64) * 2
    logvar = torch.randn(n, d, generator=gen, dtype=torch.float64)
    return mu, logvar


def test_mean_reduction_is_the_reference_formula():
    mu, logvar = random_gaussians(0)
    m, lv = mu.numpy(), logvar.numpy()
    expected = -0.5 * np.mean(1 + lv - m**2 - np.exp(lv))
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(expected, rel=1e-12)


def test_batchmean_is_the_closed_form_kl_per_example():
    mu, logvar = random_gaussians(1)
    exact = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))  # N×D, independent code
    got = kl_to_standard_normal(mu, logvar, reduction="batchmean")
    assert got.item() == pytest.approx(exact.sum(1).mean().item(), rel=1e-12)
    # "mean" is the same divided by the number of dimensions
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(exact.mean().item(), rel=1e-12)


def test_zero_at_the_prior_and_positive_elsewhere():
    zeros = torch.zeros(4, 8)
    assert kl_to_standard_normal(zeros, zeros).item() == 0.0
    mu, logvar = random_gaussians(2)
    assert kl_to_standard_normal(mu, logvar).item() > 0


def test_gradient():
    mu = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([[0.2, -0.3]], dtype=torch.float64, requires_grad=True)
    kl_to_standard_normal(mu, logvar).backward()
    # d/dμ = μ / D, d/dlogσ² = (σ² − 1) / (2D), D = 2 elements in all
    torch.testing.assert_close(mu.grad, mu.detach() / 2)
    torch.testing.assert_close(logvar.grad, (logvar.detach().exp() - 1) / 4)


def test_bfloat16_is_upcast_and_bad_reduction_refused():
    mu, logvar = random_gaussians(3)
    got = kl_to_standard_normal(mu.bfloat16(), logvar.bfloat16())
    assert got.dtype == torch.float32
    with pytest.raises(ValueError, match="reduction"):
        kl_to_standard_normal(mu, logvar, reduction="sum")
