import numpy as np
import pytest

from infomax.eval.prior import plot_prior, prior_lines, prior_stats


def test_standard_normal_matches_the_prior(tmp_path):
    mu = np.random.default_rng(0).standard_normal((20_000, 8)).astype(np.float32)
    s = prior_stats(mu, chunk=3000)
    assert abs(s["mean_per_dim"]["mean"]) < 0.02 and abs(s["std_per_dim"]["mean"] - 1) < 0.02
    assert s["kl_moment_matched"] < 0.01 and s["collapsed_dims"] == 0
    assert plot_prior(mu, s, tmp_path / "p.png").stat().st_size > 1000
    assert any("KL" in line for line in prior_lines(s))


def test_shifted_and_collapsed_dims():
    rng = np.random.default_rng(1)
    mu = np.stack([rng.normal(2.0, 0.5, 5000), np.full(5000, 0.3)], axis=1)
    s = prior_stats(mu)
    np.testing.assert_allclose(s["per_dim"]["mean"], [2.0, 0.3], atol=0.03)
    np.testing.assert_allclose(s["per_dim"]["std"], [0.5, 0.0], atol=0.02)
    assert s["collapsed_dims"] == 1
    # dim 0: ½(0.25 + 4 − 1 − ln 0.25) = 2.318
    assert s["kl_moment_matched"] > 2.3
    assert s["mean_per_dim"]["max"] == pytest.approx(2.0, abs=0.03)
