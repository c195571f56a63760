import numpy as np
import pytest
import torch

from infomax.model.whitening import FLOOR, Whitening, moments, whiten, whitening_matrix


def _low_rank_cov(z=6, rank=4, seed=0):
    b = np.random.default_rng(seed).normal(size=(z, rank))
    return b, b @ b.T  # C = B Bᵀ, rank 4 of 6


def test_a_diagonal_covariance_by_hand():
    # λ = 16, 1, 0: the power 1/4 gives 16^-1/4 = 1/2 and 1^-1/4 = 1; the zero direction is dropped
    w = whitening_matrix(torch.diag(torch.tensor([16.0, 1.0, 0.0])), power=0.25)
    torch.testing.assert_close(w, torch.diag(torch.tensor([0.5, 1.0, 0.0], dtype=torch.float64)))


def test_power_one_half_whitens_the_span_of_the_data():
    b, cov = _low_rank_cov()
    w = whitening_matrix(torch.from_numpy(cov), power=0.5).numpy()
    # W C W = the orthogonal projector onto the span of B, B B⁺ (the identity covariance there)
    np.testing.assert_allclose(w @ cov @ w, b @ np.linalg.pinv(b), atol=1e-10)


def test_power_one_quarter_leaves_the_square_root_of_the_covariance():
    from scipy.linalg import sqrtm

    _, cov = _low_rank_cov(seed=1)
    w = whitening_matrix(torch.from_numpy(cov), power=0.25).numpy()
    # W C W = V Λ^(1 − 2·1/4) Vᵀ = C^(1/2); W is symmetric and W² = (C^(1/2))⁺
    np.testing.assert_allclose(w @ cov @ w, sqrtm(cov).real, atol=1e-7)
    np.testing.assert_allclose(w, w.T, atol=1e-12)
    np.testing.assert_allclose(w @ w, np.linalg.pinv(sqrtm(cov).real, rcond=1e-5), atol=1e-6)


def test_directions_below_the_floor_are_dropped_not_amplified():
    cov = torch.diag(torch.tensor([1.0, FLOOR / 10, 0.0], dtype=torch.float64))
    expected = torch.diag(torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(whitening_matrix(cov, 0.25), expected)


def test_moments_are_the_mean_and_biased_covariance():
    mu = np.random.default_rng(2).normal(size=(50, 5)) * [1, 2, 3, 4, 5] + 7
    t = torch.from_numpy(mu)
    mean, cov = moments(t.sum(0), t.T @ t, len(mu))
    np.testing.assert_allclose(mean.numpy(), mu.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.cov(mu.T, bias=True), rtol=1e-9, atol=1e-9)


def test_the_module_is_mu_until_fitted_then_whitens_it():
    mu = torch.from_numpy(np.random.default_rng(3).normal(size=(40, 4)) @ np.diag([3.0, 1.0, 0.5, 2.0]) + 1.0)
    w = Whitening(4)
    assert not w.fitted
    assert torch.equal(whiten(mu.float(), w.mean, w.matrix), mu.float())  # unfitted: m = 0, W = I
    w.fit(mu.sum(0), mu.T @ mu, len(mu))
    assert w.fitted and float(w.power) == 0.25
    m, c = mu.numpy().mean(0), np.cov(mu.numpy().T, bias=True)
    lam, v = np.linalg.eigh(c)
    expected = (mu.numpy() - m) @ (v * lam ** -0.25) @ v.T
    np.testing.assert_allclose(whiten(mu.float(), w.mean, w.matrix).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert whiten(mu.to(torch.bfloat16), w.mean, w.matrix).dtype == torch.bfloat16


def test_state_dicts_without_it_load_as_unfitted_and_a_fitted_one_round_trips():
    old = Whitening(3)
    old.load_state_dict({})  # a checkpoint written before whitening existed
    assert not old.fitted and torch.equal(old.matrix, torch.eye(3))
    fitted = Whitening(3)
    x = torch.randn(20, 3, dtype=torch.float64)
    fitted.fit(x.sum(0), x.T @ x, 20, power=0.5)
    again = Whitening(3)
    again.load_state_dict(fitted.state_dict())
    assert again.fitted and float(again.power) == 0.5
    torch.testing.assert_close(again.matrix, fitted.matrix)
    again.reset()
    assert not again.fitted and torch.equal(again.matrix, torch.eye(3)) and not again.mean.any()


@pytest.mark.parametrize("power", [0.25, 0.5])
def test_the_whitened_codes_have_the_covariance_the_power_gives(power):
    mix = np.array([[2.0, 0, 0], [1, 1, 0], [0, 0.5, 0.2]])
    mu = torch.from_numpy(np.random.default_rng(4).normal(size=(500, 3)) @ mix)
    w = Whitening(3)
    w.fit(mu.sum(0), mu.T @ mu, len(mu), power=power)
    y = whiten(mu, w.mean.double(), w.matrix.double()).numpy()
    c = np.cov(mu.numpy().T, bias=True)
    lam, v = np.linalg.eigh(c)
    np.testing.assert_allclose(np.cov(y.T, bias=True), (v * lam ** (1 - 2 * power)) @ v.T, rtol=1e-4, atol=1e-5)
