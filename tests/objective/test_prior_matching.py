import torch
import torch.nn.functional as F

from infomax.model.prior_critic import PriorDiscriminator
from infomax.objective.prior_matching import prior_matching_losses


def _softplus64(t):
    return torch.log1p(torch.exp(t))


def test_losses_against_the_formulas_in_float64():
    torch.manual_seed(0)
    d = PriorDiscriminator(5, 7).double()
    z, prior = torch.randn(6, 5, dtype=torch.float64) + 1, torch.randn(9, 5, dtype=torch.float64)

    def logit(v):  # the MLP written out
        h = torch.relu(v @ d.net[0].weight.T + d.net[0].bias)
        h = torch.relu(h @ d.net[2].weight.T + d.net[2].bias)
        return (h @ d.net[4].weight.T + d.net[4].bias)[:, 0]

    enc, disc = prior_matching_losses(d, z, prior)
    torch.testing.assert_close(enc, _softplus64(-logit(z)).mean(), rtol=1e-12, atol=1e-12)
    want = _softplus64(-logit(prior)).mean() + _softplus64(logit(z)).mean()
    torch.testing.assert_close(disc, want, rtol=1e-12, atol=1e-12)


def test_each_loss_reaches_only_its_own_player():
    torch.manual_seed(1)
    d = PriorDiscriminator(4, 8)
    z = torch.randn(5, 4, requires_grad=True)
    enc, disc = prior_matching_losses(d, z, torch.randn(5, 4))
    enc.backward()
    assert z.grad.abs().sum() > 0 and all(p.grad is None for p in d.parameters())
    z.grad = None
    disc.backward()
    assert z.grad is None and all(p.grad.abs().sum() > 0 for p in d.parameters())


def test_the_game_pulls_the_codes_to_the_prior():
    """An 'encoder' that shifts N(0, I) noise by b, and D, in one optimizer: b moves to 0."""
    torch.manual_seed(2)
    d = PriorDiscriminator(2, 32)
    shift = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    opt = torch.optim.Adam([shift, *d.parameters()], lr=0.02)
    for _ in range(400):
        z = shift + torch.randn(128, 2)
        enc, disc = prior_matching_losses(d, z, torch.randn(128, 2))
        opt.zero_grad()
        (enc + disc).backward()
        opt.step()
    assert shift.detach().norm() < 0.5, shift
    # at the equilibrium D cannot tell the two apart: its loss is near log 4
    with torch.no_grad():
        _, disc = prior_matching_losses(d, torch.randn(4096, 2) + shift, torch.randn(4096, 2))
    assert abs(disc.item() - 2 * F.softplus(torch.tensor(0.0)).item()) < 0.1
