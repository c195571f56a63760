"""The prior check: how close the encoder's μ features are to the N(0, 1) prior they were pushed to.

Per dimension d, the mean m_d and standard deviation s_d of μ_d over the whole data set are
computed; the report summarizes them across dimensions (mean, min, max) and gives the KL
divergence from N(0, 1) of the moment-matched diagonal Gaussian, sum_d ½(s_d² + m_d² − 1 − ln s_d²),
which is 0 when every dimension has mean 0 and std 1. No labels are needed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLLAPSED_STD = 0.01  # a dimension whose std is below this carries (almost) no information


def prior_stats(mu: np.ndarray, chunk: int = 65536) -> dict:
    """Summary of per-dimension mean and std of μ (N×D), accumulated in float64 chunk by chunk."""
    n, dim = mu.shape
    total = np.zeros(dim)
    total_sq = np.zeros(dim)
    for start in range(0, n, chunk):
        block = np.asarray(mu[start : start + chunk], dtype=np.float64)
        total += block.sum(0)
        total_sq += (block * block).sum(0)
    mean = total / max(n, 1)  # D
    std = np.sqrt(np.maximum(total_sq / max(n, 1) - mean * mean, 0.0))  # D
    var = np.maximum(std * std, 1e-12)
    kl = 0.5 * (var + mean * mean - 1.0 - np.log(var))  # D
    return {
        "n": int(n),
        "dims": int(dim),
        "mean_per_dim": {"mean": float(mean.mean()), "abs_mean": float(np.abs(mean).mean()),
                         "min": float(mean.min()), "max": float(mean.max())},
        "std_per_dim": {"mean": float(std.mean()), "min": float(std.min()), "max": float(std.max())},
        "collapsed_dims": int((std < COLLAPSED_STD).sum()),
        "kl_moment_matched": float(kl.sum()),
        "per_dim": {"mean": mean.tolist(), "std": std.tolist()},
    }


def prior_lines(stats: dict) -> list[str]:
    """Human-readable summary, one fact per line."""
    m, s = stats["mean_per_dim"], stats["std_per_dim"]
    return [
        f"μ over {stats['n']} images, {stats['dims']} dims (prior N(0, 1): mean 0, std 1 per dim)",
        f"per-dim mean: average {m['mean']:+.3f}, average |mean| {m['abs_mean']:.3f}, range [{m['min']:+.3f}, {m['max']:+.3f}]",
        f"per-dim std:  average {s['mean']:.3f}, range [{s['min']:.3f}, {s['max']:.3f}]; "
        f"{stats['collapsed_dims']} dims with std < {COLLAPSED_STD}",
        f"KL(moment-matched Gaussian ‖ N(0, 1)) = {stats['kl_moment_matched']:.2f} nats",
    ]


def plot_prior(mu: np.ndarray, stats: dict, path: str | Path, max_values: int = 2_000_000, seed: int = 0) -> Path:
    """Histogram of all μ values against the N(0, 1) density, and the per-dim means and stds."""
    from infomax.extras import require

    require("matplotlib", "eval", "the prior plot").use("Agg")
    plt = require("matplotlib.pyplot", "eval", "the prior plot")

    from infomax.eval.plot import save_figure

    rng = np.random.default_rng(seed)
    rows = np.arange(len(mu))
    if len(mu) * mu.shape[1] > max_values:  # a row sample keeps the histogram cheap
        rows = np.sort(rng.choice(len(mu), size=max(1, max_values // mu.shape[1]), replace=False))
    values = np.asarray(mu[rows], dtype=np.float64).ravel()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    lo, hi = min(values.min(), -4.0), max(values.max(), 4.0)
    left.hist(values, bins=120, range=(lo, hi), density=True, color="tab:blue", alpha=0.6, label="μ (all dims)")
    grid = np.linspace(lo, hi, 400)
    left.plot(grid, np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi), color="black", lw=1.5, label="N(0, 1)")
    left.set_xlabel("value")
    left.set_ylabel("density")
    left.set_title("μ values against the prior")
    left.legend()
    order = np.argsort(stats["per_dim"]["std"])[::-1]
    dims = np.arange(len(order))
    right.bar(dims, np.asarray(stats["per_dim"]["std"])[order], width=1.0, color="tab:orange", label="std")
    right.plot(dims, np.asarray(stats["per_dim"]["mean"])[order], ".", ms=3, color="tab:blue", label="mean")
    right.axhline(1.0, color="black", lw=1, ls="--")
    right.axhline(0.0, color="gray", lw=0.5)
    right.set_xlabel("dimension (sorted by std)")
    right.set_title("per-dimension mean and std (prior: 0 and 1)")
    right.legend()
    fig.tight_layout()
    return save_figure(fig, path)
