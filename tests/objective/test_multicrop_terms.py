"""Small crops in the objective (multi-crop): each crop's code scored against every view's code
and local map, against the formulas written out in float64 (tests/naive.py)."""

import pytest
import torch

from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.objective.config import ObjectiveConfig
from infomax.objective.loss import Draws
from tests.naive import (concat_global, concat_local, dot_global_matrix, dot_local_matrix, naive_estimator,
                         naive_kl, positives_and_negatives)


def _scores(loss, a, z, c, perm_g, perm_l):
    """(global, local) of one pair by the written-out formulas: the code a against the code z and
    the map c (global pairing "zz": a is both the global and the local critic's code)."""
    assert loss.cfg.global_pairing == "zz"
    if loss.cfg.critic == "concat":
        gp, gn = concat_global(loss.global_critic, a, z, perm_g)
        lp, ln = concat_local(loss.local_critic, a, c, perm_l)
        return naive_estimator(loss.cfg.estimator, gp, gn[:, None]), naive_estimator(
            loss.cfg.estimator, lp.reshape(-1), ln.reshape(-1, 1))
    g = positives_and_negatives(dot_global_matrix(loss.global_critic, a, z), perm_g)
    lo = positives_and_negatives(dot_local_matrix(loss.local_critic, a, c), perm_l)
    return naive_estimator(loss.cfg.estimator, *g), naive_estimator(loss.cfg.estimator, *lo)


@pytest.mark.parametrize("objective,perms", [
    (ObjectiveConfig(estimator="infonce", critic="dot", negatives="all"), False),
    (ObjectiveConfig(), True),  # the reference's: JSD, concat critics, shuffled negatives
])
def test_each_crop_is_scored_against_every_view(objective, perms):
    torch.manual_seed(4)
    model = DIM(ModelConfig(image_size=16, z_dim=32, channels=64), objective).double().eval()
    n, m = 4, 3
    x1, x2 = torch.rand(2, n, 3, 16, 16, dtype=torch.float64)
    crops = torch.rand(m * n, 3, 8, 8, dtype=torch.float64)  # crop-major
    eps, eps_small = torch.randn(2 * n, 32, dtype=torch.float64), torch.randn(m * n, 32, dtype=torch.float64)
    perm_g, perm_l = (torch.tensor([1, 2, 3, 0]), torch.tensor([3, 0, 1, 2])) if perms else (None, None)
    out = model.encoder(torch.cat([x1, x2]))
    small = model.encoder(crops)
    assert small.local.shape == (m * n, 64, 2, 2)  # 8 px through three blocks
    got = model.objective.terms(*out, Draws(eps, perm_g, perm_l, None, eps_small), views=2, small=small)

    loss = model.objective
    z = out.mu + torch.exp(out.logvar / 2) * eps
    zs = small.mu + torch.exp(small.logvar / 2) * eps_small
    v1, v2 = slice(0, n), slice(n, 2 * n)
    pairs = [(z[v1], z[v2], out.local[v2]), (z[v2], z[v1], out.local[v1])]  # the two views, both ways
    for c in range(m):
        for v in (v1, v2):
            pairs.append((zs[c * n : (c + 1) * n], z[v], out.local[v]))  # crop c against view v
    scored = [_scores(loss, a, b, c, perm_g, perm_l) for a, b, c in pairs]
    assert len(scored) == 2 + 2 * m
    want_g = sum(g for g, _ in scored) / len(scored)
    want_l = sum(lo for _, lo in scored) / len(scored)
    torch.testing.assert_close(got["global"], want_g, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got["local"], want_l, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got["kl"], naive_kl(out.mu, out.logvar), rtol=1e-10, atol=1e-12)  # the views only


def test_crops_draw_their_noise_after_the_views_and_leave_the_views_draws_alone():
    model = DIM(ModelConfig(image_size=16, z_dim=8, channels=32), ObjectiveConfig(estimator="infonce",
                critic="dot", negatives="all"))
    plain = model.objective.draw(4, 2, torch.Generator().manual_seed(5), torch.device("cpu"))
    more = model.objective.draw(4, 2, torch.Generator().manual_seed(5), torch.device("cpu"), small=12)
    assert torch.equal(plain.eps, more.eps) and plain.eps_small is None
    everything = torch.randn(20, 8, generator=torch.Generator().manual_seed(5))
    assert torch.equal(more.eps_small, everything[8:])


def test_small_crops_lower_the_loss_of_a_training_step():
    # the crops' terms carry gradient to the encoder: one Adam step on them alone lowers them
    torch.manual_seed(6)
    model = DIM(ModelConfig(image_size=16, z_dim=16, channels=32),
                ObjectiveConfig(estimator="infonce", critic="dot", negatives="all"))
    x1, x2 = torch.rand(2, 16, 3, 16, 16)
    crops = torch.rand(2 * 16, 3, 8, 8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    first = float(model.loss(x1, x2, generator=torch.Generator().manual_seed(0), small=crops)[0].detach())
    without = float(model.loss(x1, x2, generator=torch.Generator().manual_seed(0))[0].detach())
    assert first != pytest.approx(without)
    for _ in range(5):
        opt.zero_grad()
        loss = model.loss(x1, x2, generator=torch.Generator().manual_seed(0), small=crops)[0]
        loss.backward()
        opt.step()
    assert float(model.loss(x1, x2, generator=torch.Generator().manual_seed(0), small=crops)[0].detach()) < first
