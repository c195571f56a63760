"""DIMLoss on the seed encoder's features against the objective written out in float64
(tests/naive.py) for every estimator × critic × negatives, one and two views; its weighted sum;
and the randomness it draws."""

import itertools

import pytest
import torch

from infomax.model.config import ModelConfig
from infomax.model.encoder import Encoder
from infomax.objective.config import ObjectiveConfig
from infomax.objective.loss import DIMLoss, Draws
from tests.naive import naive_kl, naive_objective

N, Z, C = 6, 16, 32  # images per view, z_dim, channels of the local map
PERM_GLOBAL = torch.tensor([2, 0, 1, 5, 3, 4])  # a derangement
PERM_LOCAL = torch.tensor([4, 1, 5, 0, 2, 3])  # a shuffle with a fixed point (1), unlike the global one
SHUFFLE_GLOBAL = torch.tensor([0, 3, 1, 2, 5, 4])  # fixed point 0

CASES = [(e, c, n, v) for e, (c, n), v in itertools.product(
    ["jsd", "infonce", "dv", "hellinger"],
    [("concat", "shuffle"), ("concat", "derangement"), ("dot", "shuffle"), ("dot", "derangement"), ("dot", "all")],
    [1, 2])]


def seed_features(views, seed=0, dtype=torch.float64):
    """The seed encoder (16 px, grey, z 16, 32 channels), train mode, on V·N random images."""
    torch.manual_seed(seed)
    encoder = Encoder(ModelConfig(image_size=16, in_channels=1, z_dim=Z, channels=C)).to(dtype)
    x = torch.randn(views * N, 1, 16, 16, dtype=dtype)
    return encoder, encoder(x)


def criterion(estimator="jsd", critic="concat", negatives="shuffle", dtype=torch.float64, **options):
    torch.manual_seed(1)
    cfg = ObjectiveConfig(estimator=estimator, critic=critic, negatives=negatives, critic_hidden=32, **options)
    return DIMLoss(cfg, z_dim=Z, local_channels=C, pooled_dim=C).to(dtype)


def perms(negatives):
    if negatives == "all":
        return None, None
    return (SHUFFLE_GLOBAL if negatives == "shuffle" else PERM_GLOBAL), PERM_LOCAL


def got_and_want(estimator, critic, negatives, views, seed):
    """(encoder, DIMLoss, features, ε, DIMLoss.terms, the written-out terms) on the same draws."""
    encoder, out = seed_features(views)
    loss = criterion(estimator, critic, negatives)
    eps = torch.randn(views * N, Z, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    perm_global, perm_local = perms(negatives)
    got = loss.terms(*out, Draws(eps, perm_global, perm_local), views=views)
    want = naive_objective(loss, out.mu, out.logvar, out.local, out.pooled, eps, perm_global, perm_local, views)
    return encoder, loss, out, eps, got, want


@pytest.mark.parametrize("estimator,critic,negatives,views", CASES)
def test_terms_equal_the_written_out_objective_in_float64(estimator, critic, negatives, views):
    _, loss, out, eps, got, want = got_and_want(estimator, critic, negatives, views, seed=2)
    perm_global, perm_local = perms(negatives)
    for k in ("global", "local", "kl"):
        assert got[k].dtype == torch.float64
        torch.testing.assert_close(got[k], want[k], rtol=1e-10, atol=1e-12, msg=k)
    for k in ("global_acc", "local_acc"):
        assert 0 <= got[k] <= 1 and not got[k].requires_grad
    if negatives != "all":  # each critic reads its own permutation
        swapped = naive_objective(loss, out.mu, out.logvar, out.local, out.pooled, eps, perm_local, perm_global, views)
        assert abs(got["global"] - swapped["global"]) > 1e-9 or abs(got["local"] - swapped["local"]) > 1e-9


@pytest.mark.parametrize("estimator,critic,negatives,views", [
    ("jsd", "concat", "shuffle", 1), ("infonce", "dot", "all", 2), ("dv", "dot", "derangement", 2),
    ("hellinger", "concat", "derangement", 1)])
def test_gradients_equal_the_written_out_objective(estimator, critic, negatives, views):
    encoder, loss, _, _, got, want = got_and_want(estimator, critic, negatives, views, seed=3)
    params = [*encoder.parameters(), *loss.parameters()]
    weighted = [0.5 * t["global"] + 1.5 * t["local"] + 0.01 * t["kl"] for t in (got, want)]
    g_got = torch.autograd.grad(weighted[0], params, retain_graph=True)
    g_want = torch.autograd.grad(weighted[1], params)
    for a, b in zip(g_got, g_want):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-11)
    assert all(g.abs().sum() > 0 for g in g_got[-len(list(loss.parameters())):])  # every critic weight learns


@pytest.mark.parametrize("views", [1, 2])
def test_forward_is_draw_then_terms_then_total(views):
    _, out = seed_features(views)
    loss = criterion()
    total, terms = loss(*out, views=views, generator=torch.Generator().manual_seed(7))
    draws = loss.draw(N, views, torch.Generator().manual_seed(7), torch.device("cpu"))
    again = loss.terms(*out, Draws(draws.eps.double(), draws.perm_global, draws.perm_local), views=views)
    for k in terms:
        torch.testing.assert_close(terms[k], again[k], rtol=1e-12, atol=1e-12, msg=k)
    torch.testing.assert_close(total.double(), 0.5 * again["global"] + 1.5 * again["local"] + 0.01 * again["kl"],
                               rtol=1e-6, atol=1e-7)


def _terms(**values):
    return {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}


def test_total_is_the_weighted_sum():
    terms = _terms(**{"global": 0.3, "local": 0.7, "kl": 2.0, "global_acc": 0.9, "local_acc": 0.8})
    loss = criterion(alpha=0.25, beta=2.0, gamma=0.1)
    assert loss.total(terms).item() == pytest.approx(0.25 * 0.3 + 2.0 * 0.7 + 0.1 * 2.0, rel=1e-6)
    # local–local MI weighted by δ when δ > 0
    terms["local_local"] = torch.tensor(1.3, dtype=torch.float64)
    loss = criterion(delta=0.4)
    assert loss.total(terms).item() == pytest.approx(0.5 * 0.3 + 1.5 * 0.7 + 0.4 * 1.3 + 0.01 * 2.0, rel=1e-6)
    # adversarial prior: γ weighs the encoder's side "prior" (not the KL), the discriminator's loss adds unweighted
    terms.update(_terms(prior=0.9, prior_critic=1.4))
    loss = criterion(prior="adversarial", gamma=0.2, delta=0.4)
    want = 0.5 * 0.3 + 1.5 * 0.7 + 0.4 * 1.3 + 0.2 * 0.9 + 1.4
    assert loss.total(terms).item() == pytest.approx(want, rel=1e-6)
    # no prior term at all
    del terms["prior"], terms["prior_critic"]
    assert criterion(prior="none").total(terms).item() == pytest.approx(0.5 * 0.3 + 1.5 * 0.7, rel=1e-6)


def test_forward_with_local_local_and_adversarial_prior_sums_its_own_terms():
    # float32: the draws from the prior are float32 (ε too, promoted by float64 features)
    _, out = seed_features(1, dtype=torch.float32)
    loss = criterion(delta=0.4, prior="adversarial", gamma=0.2, dtype=torch.float32)
    total, terms = loss(*out, generator=torch.Generator().manual_seed(4))
    assert {"local_local", "local_local_acc", "prior", "prior_critic", "kl"} <= set(terms)
    want = 0.5 * terms["global"] + 1.5 * terms["local"] + 0.4 * terms["local_local"] + 0.2 * terms["prior"]
    torch.testing.assert_close(total, want + terms["prior_critic"], rtol=1e-6, atol=1e-6)
    kl = naive_kl(out.mu.double(), out.logvar.double())  # logged only
    torch.testing.assert_close(terms["kl"].double(), kl, rtol=1e-5, atol=1e-6)
    # the draws from the prior are the N rows after ε
    draws = loss.draw(N, 1, torch.Generator().manual_seed(4), torch.device("cpu"))
    assert draws.prior.shape == (N, Z) and draws.eps.shape == (N, Z)
    with pytest.raises(ValueError, match="needs draws from the prior"):
        loss.terms(*out, Draws(draws.eps, draws.perm_global, draws.perm_local), views=1)


def test_shuffle_draws_an_independent_permutation_per_critic_then_eps():
    loss = criterion(negatives="shuffle")
    n, views = 8, 2
    differ = 0
    for seed in range(20):
        d = loss.draw(n, views, torch.Generator().manual_seed(seed), torch.device("cpu"))
        # the reference's order: one randperm per critic (two tf.random.shuffle calls), then ε
        gen = torch.Generator().manual_seed(seed)
        assert torch.equal(d.perm_global, torch.randperm(n, generator=gen))
        assert torch.equal(d.perm_local, torch.randperm(n, generator=gen))
        assert torch.equal(d.eps, torch.randn(views * n, Z, generator=gen))
        assert d.prior is None
        again = loss.draw(n, views, torch.Generator().manual_seed(seed), torch.device("cpu"))
        assert torch.equal(again.perm_global, d.perm_global) and torch.equal(again.perm_local, d.perm_local)
        differ += not torch.equal(d.perm_global, d.perm_local)
    assert differ >= 19  # 8! orders: equal draws are rare
    # a plain shuffle may pair an image with itself (probability 1 − 1/e per permutation for large n)
    fixed = [bool((loss.draw(n, 1, torch.Generator().manual_seed(s), "cpu").perm_global == torch.arange(n)).any())
             for s in range(50)]
    assert 20 <= sum(fixed) <= 45


def test_derangement_never_pairs_an_image_with_itself():
    loss = criterion(negatives="derangement")
    for seed in range(200):
        d = loss.draw(5, 1, torch.Generator().manual_seed(seed), torch.device("cpu"))
        for perm in (d.perm_global, d.perm_local):
            assert torch.equal(perm.sort().values, torch.arange(5)) and not (perm == torch.arange(5)).any()


def test_all_negatives_draw_no_permutation():
    d = criterion(critic="dot", negatives="all").draw(4, 1, torch.Generator().manual_seed(0), torch.device("cpu"))
    assert d.perm_global is None and d.perm_local is None
    assert torch.equal(d.eps, torch.randn(4, Z, generator=torch.Generator().manual_seed(0)))
