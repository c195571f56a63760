"""The objective's options (estimator, critic, negatives, two views) against written-out formulas,
and each one trains: the loss falls in 20 steps."""

import pytest
import torch
import torch.nn.functional as F

from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.objective.config import ObjectiveConfig
from tests.naive import terms_given


def test_all_negatives_with_infonce_is_cross_entropy_over_the_batch():
    torch.manual_seed(0)
    objective = ObjectiveConfig(estimator="infonce", critic="dot", negatives="all", global_pairing="xz")
    model = DIM(ModelConfig(image_size=16), objective).double()
    x = torch.randn(5, 3, 16, 16, dtype=torch.float64)
    eps = torch.randn(5, 256, dtype=torch.float64)
    got = terms_given(model, x, eps, None, None)
    out = model.encoder(x)
    z = out.mu + torch.exp(out.logvar / 2) * eps
    g = model.objective.global_critic.matrix(out.pooled, z)  # 5×5: pooled_i against z_j
    torch.testing.assert_close(got["global"], F.cross_entropy(g, torch.arange(5)), rtol=1e-10, atol=1e-12)
    s = model.objective.local_critic.matrix(z, out.local)  # 5×5×16
    want = 0.0
    for i in range(5):
        negatives = torch.cat([s[i, j] for j in range(5) if j != i])
        for p in range(16):
            want = want - torch.log_softmax(torch.cat([s[i, i, p : p + 1], negatives]), 0)[0]
    torch.testing.assert_close(got["local"], want / 80, rtol=1e-10, atol=1e-12)


def test_two_views_score_each_view_against_the_other():
    torch.manual_seed(1)
    objective = ObjectiveConfig(estimator="dv", critic="dot")
    model = DIM(ModelConfig(image_size=16), objective).double().eval()  # eval: BN per image
    x1, x2 = torch.randn(2, 4, 3, 16, 16, dtype=torch.float64)
    eps = torch.randn(8, 256, dtype=torch.float64)
    perm_g, perm_l = torch.tensor([1, 2, 3, 0]), torch.tensor([2, 1, 3, 0])  # one per critic
    got = terms_given(model, x1, eps, perm_g, perm_l, x2=x2)
    o1, o2 = model.encoder(x1), model.encoder(x2)
    z1 = o1.mu + torch.exp(o1.logvar / 2) * eps[:4]
    z2 = o2.mu + torch.exp(o2.logvar / 2) * eps[4:]

    def dv(pos, neg):  # −(E_pos T − log E_neg e^T)
        return -(pos.mean() - torch.log(torch.exp(neg).mean()))

    def glob(a, b):
        return dv(*model.objective.global_critic(a, b, perm_g))

    def loc(z, c):
        return dv(*model.objective.local_critic(z, c, perm_l))

    torch.testing.assert_close(got["global"], (glob(z1, z2) + glob(z2, z1)) / 2, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got["local"], (loc(z1, o2.local) + loc(z2, o1.local)) / 2, rtol=1e-10, atol=1e-12)
    kl = -0.5 * (1 + torch.cat([o1.logvar, o2.logvar]) - torch.cat([o1.mu, o2.mu]) ** 2
                 - torch.cat([o1.logvar, o2.logvar]).exp()).mean()
    torch.testing.assert_close(got["kl"], kl, rtol=1e-10, atol=1e-12)


def test_multiscale_averages_the_local_term_over_both_maps():
    torch.manual_seed(2)
    model = DIM(ModelConfig(image_size=16), ObjectiveConfig(multiscale=True)).double()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64)
    eps = torch.randn(4, 256, dtype=torch.float64)
    perm = torch.tensor([3, 2, 0, 1])
    got = terms_given(model, x, eps, torch.tensor([1, 0, 3, 2]), perm)  # the local critics' shuffle: perm
    out = model.encoder(x)
    z = out.mu + torch.exp(out.logvar / 2) * eps
    assert out.middle.shape == (4, 128, 8, 8)

    def jsd(critic, c):
        pos, neg = critic(z, c, perm)
        return F.softplus(-pos).mean() + F.softplus(neg).mean()

    want = (jsd(model.objective.local_critic, out.local) + jsd(model.objective.middle_critic, out.middle)) / 2
    torch.testing.assert_close(got["local"], want, rtol=1e-10, atol=1e-12)


def test_local_local_term_against_a_loop():
    torch.manual_seed(3)
    model = DIM(ModelConfig(image_size=16), ObjectiveConfig(delta=1.0)).double()
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    got = terms_given(model, x, torch.randn(3, 256, dtype=torch.float64), torch.tensor([1, 2, 0]),
                      torch.tensor([2, 0, 1]))
    c = model.encoder(x).local.flatten(2).transpose(1, 2)  # 3×16×256: image, position, channels
    critic = model.objective.local_local_critic

    def embed(seq, h):
        return F.relu(h @ seq[0].weight.T + seq[0].bias) @ seq[2].weight.T + seq[2].bias

    u, v = embed(critic.phi, c) / 16, embed(critic.psi, c)  # √256 = 16
    pos, neg = [], []
    for i in range(3):
        for p in range(16):
            pos += [u[i, p] @ v[i, q] for q in range(16) if q != p]
            neg += [u[i, p] @ v[j, q] for j in range(3) if j != i for q in range(16)]
    want = F.softplus(-torch.stack(pos)).mean() + F.softplus(torch.stack(neg)).mean()
    torch.testing.assert_close(got["local_local"], want, rtol=1e-10, atol=1e-12)
    assert 0 <= got["local_local_acc"] <= 1


def _digits(n=512):
    from sklearn.datasets import load_digits

    images = torch.from_numpy(load_digits().images[:n]).float()[:, None] / 16  # N×1×8×8 in [0, 1]
    return F.interpolate(images, size=16, mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("estimator,critic,negatives,views,extra", [
    ("infonce", "concat", "derangement", 1, {}),
    ("dv", "concat", "derangement", 1, {}),
    ("hellinger", "concat", "derangement", 1, {}),
    ("jsd", "dot", "derangement", 1, {}),
    ("infonce", "dot", "all", 1, {}),
    ("infonce", "dot", "all", 2, {}),
    ("infonce", "dot", "all", 2, {"temperature": 0.1}),
    ("jsd", "concat", "derangement", 1, {"multiscale": True}),
    ("jsd", "concat", "derangement", 1, {"delta": 1.0}),
    ("jsd", "concat", "derangement", 1, {"attention": True}),
    ("jsd", "concat", "derangement", 1, {"prior": "adversarial"}),
    ("jsd", "concat", "shuffle", 1, {}),  # the reference: an independent shuffle per critic
    ("infonce", "dot", "all", 2, {"rescale": 13}),  # multi-scale input
])
def test_every_option_lowers_the_loss_in_20_steps(estimator, critic, negatives, views, extra):
    from infomax.train.augment import Augment

    torch.manual_seed(0)
    images = _digits()
    rescale = extra.pop("rescale", 0)
    attention = extra.pop("attention", False)
    objective = ObjectiveConfig(estimator=estimator, critic=critic, negatives=negatives, critic_hidden=64, **extra)
    model = DIM(ModelConfig(image_size=16, in_channels=1, z_dim=32, attention=attention), objective)
    weights = {"global": 0.5, "local": 1.5, "kl": 0.01, **({"local_local": 1.0} if extra.get("delta") else {})}
    if extra.get("prior") == "adversarial":
        weights["prior"] = weights.pop("kl")
    assert objective.weights == weights
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    augment = Augment(crop="pad", pad=2, jitter=0.2, grayscale=0.0, rescale=rescale)
    gen = torch.Generator().manual_seed(0)

    def loss_of(batch, generator, train=False):
        x1, x2 = (v - 0.5 for v in augment.views(batch, 2, generator)) if views == 2 else (batch - 0.5, None)
        total, terms = model.loss(x1, x2, generator=generator)
        loss = sum(w * terms[k] for k, w in weights.items())
        # the total adds the prior discriminator's own loss, which trains it
        torch.testing.assert_close(total, loss + terms["prior_critic"] if "prior_critic" in terms else loss)
        return total if train else loss

    probe = images[:128]
    with torch.no_grad():
        start = loss_of(probe, torch.Generator().manual_seed(1)).item()
    for _ in range(20):
        loss = loss_of(images[torch.randint(0, len(images), (64,), generator=gen)], gen, train=True)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = loss_of(probe, torch.Generator().manual_seed(1)).item()
    # cosine scores are bounded by 1/τ, so that loss starts near log(K + 1) and moves more slowly
    drop = 0.03 if extra.get("temperature") else 0.05
    assert end < start - drop * abs(start), (start, end)
