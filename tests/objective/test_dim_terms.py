"""DIM (the seed encoder with its objective) against the objective written out in float64."""

import math

import pytest
import torch
import torch.nn.functional as F

from infomax.model.config import ModelConfig
from infomax.model.dim import DIM
from infomax.objective.config import ObjectiveConfig
from tests.naive import naive_mlp, terms_given

REFERENCE_WEIGHTS = {"global": 0.5, "local": 1.5, "kl": 0.01}  # α, β, γ of the reference


def weighted(terms, weights=REFERENCE_WEIGHTS):
    return sum(w * terms[k] for k, w in weights.items())


def naive_terms(model, x, eps, perm_global, perm_local):
    """The objective written out the reference's way: explicit concatenations, tiled z,
    −log σ(T_pos) − log(1 − σ(T_neg)), and the KL formula; one shuffle per critic."""
    objective = model.objective
    out = model.encoder(x)
    z = out.mu + torch.exp(out.logvar / 2) * eps
    a = z if objective.cfg.global_pairing == "zz" else out.pooled
    g_pos = naive_mlp(objective.global_critic.layers, torch.cat([a, z], 1))
    g_neg = naive_mlp(objective.global_critic.layers, torch.cat([a, z[perm_global]], 1))
    n, c, h, w = out.local.shape
    z_map = z[:, None, None, :].expand(n, h, w, z.shape[1])
    c_nhwc = out.local.permute(0, 2, 3, 1)
    l_pos = naive_mlp(objective.local_critic.layers, torch.cat([z_map, c_nhwc], -1))
    l_neg = naive_mlp(objective.local_critic.layers, torch.cat([z_map, c_nhwc[perm_local]], -1))

    def bce(tp, tn):
        return -(torch.log(torch.sigmoid(tp)).mean() + torch.log(1 - torch.sigmoid(tn)).mean())

    kl = -0.5 * (1 + out.logvar - out.mu**2 - out.logvar.exp()).mean()
    return {"global": bce(g_pos, g_neg), "local": bce(l_pos, l_neg), "kl": kl}


@pytest.mark.parametrize("pairing", ["zz", "xz"])
def test_terms_equal_naive_reference_in_float64(pairing):
    torch.manual_seed(0)
    model = DIM(ModelConfig(image_size=14, in_channels=1), ObjectiveConfig(global_pairing=pairing)).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 14, 14, generator=gen, dtype=torch.float64)
    eps = torch.randn(8, 256, generator=gen, dtype=torch.float64)
    # the two critics' shuffles are independent: different permutations, one with fixed points
    perm_global = torch.tensor([3, 0, 1, 7, 2, 4, 5, 6])
    perm_local = torch.tensor([0, 5, 6, 3, 1, 2, 7, 4])
    got = terms_given(model, x, eps, perm_global, perm_local)
    expected = naive_terms(model, x, eps, perm_global, perm_local)
    for k in ("global", "local", "kl"):
        assert got[k].dim() == 0
        torch.testing.assert_close(got[k], expected[k], rtol=1e-10, atol=1e-12, msg=k)
    # swapping the two permutations changes both MI terms: each critic uses its own
    swapped = naive_terms(model, x, eps, perm_local, perm_global)
    assert abs(got["global"] - swapped["global"]) > 1e-6 and abs(got["local"] - swapped["local"]) > 1e-6
    params = list(model.parameters())
    # the weighted sum by hand on both sides: DIMLoss.total sums in float32
    g_got = torch.autograd.grad(weighted(got), params)
    g_exp = torch.autograd.grad(weighted(expected), params)
    for a, b in zip(g_got, g_exp):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_loss_keys_reproducibility_and_negatives():
    torch.manual_seed(0)
    model = DIM(ModelConfig(image_size=16))
    x = torch.randn(6, 3, 16, 16)
    loss_a, a = model.loss(x, generator=torch.Generator().manual_seed(5))
    loss_b, b = model.loss(x, generator=torch.Generator().manual_seed(5))
    assert set(a) == {"global", "local", "kl", "global_acc", "local_acc"}
    for k in a:
        assert a[k].dim() == 0 and torch.isfinite(a[k])
        torch.testing.assert_close(a[k], b[k])
    torch.testing.assert_close(loss_a, loss_b)
    torch.testing.assert_close(loss_a, weighted(a))
    for k in ("global", "local", "kl"):
        assert a[k].requires_grad
    assert not a["global_acc"].requires_grad and 0 <= a["local_acc"] <= 1
    deranged = DIM(ModelConfig(image_size=16), ObjectiveConfig(negatives="derangement"))
    deranged.load_state_dict(model.state_dict())
    _, c = deranged.loss(x, generator=torch.Generator().manual_seed(5))
    assert torch.isfinite(c["global"])


def test_weights_are_the_reference_weights():
    assert ObjectiveConfig().weights == REFERENCE_WEIGHTS
    model = DIM(ModelConfig(image_size=16, z_dim=8, channels=16), ObjectiveConfig(critic_hidden=8))
    terms = {k: torch.tensor(v) for k, v in {"global": 2.0, "local": 3.0, "kl": 5.0, "global_acc": 9.0}.items()}
    assert model.objective.total(terms).item() == pytest.approx(0.5 * 2 + 1.5 * 3 + 0.01 * 5)


def test_bfloat16_autocast_is_close_to_float32():
    torch.manual_seed(0)
    model = DIM(ModelConfig()).to(memory_format=torch.channels_last)
    x = torch.randn(16, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    eps, perm_global, perm_local = torch.randn(16, 256), torch.roll(torch.arange(16), 1), torch.arange(16).flip(0)
    ref = terms_given(model, x, eps, perm_global, perm_local)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = terms_given(model, x, eps, perm_global, perm_local)
    for k in ("global", "local", "kl"):
        assert low[k].dtype == torch.float32
        assert low[k].item() == pytest.approx(ref[k].item(), rel=0.05, abs=0.02), k


def test_loss_falls_on_digits():
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    images = torch.from_numpy(load_digits().images).float()[:, None]  # 1797×1×8×8, 0..16
    images = F.interpolate(images, size=32, mode="bilinear", align_corners=False) / 16 - 0.5
    images = images.contiguous(memory_format=torch.channels_last)
    model = DIM(ModelConfig(in_channels=1)).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    gen = torch.Generator().manual_seed(0)
    probe = images[:256]

    def probe_terms():
        with torch.no_grad():
            return model.loss(probe, generator=torch.Generator().manual_seed(1))[1]

    start = probe_terms()
    for _ in range(30):
        batch = images[torch.randint(0, len(images), (64,), generator=gen)]
        loss, _ = model.loss(batch, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = probe_terms()
    # both MI terms at chance would give 2·log 4 = 2.77 in total
    assert weighted(end) < 0.8 * weighted(start)
    assert weighted(end) < 2 * math.log(4) - 0.2
    assert end["global"] < 0.5 * start["global"]
