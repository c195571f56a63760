import pytest
import torch
import torch.nn.functional as F

from infomax.model.config import ModelConfig
from infomax.model.critics import GlobalCritic, LocalCritic, concat_mlp_scores
from infomax.model.dim import DIM
from infomax.objective.config import ObjectiveConfig


def naive_mlp(layers, h):
    for layer in layers[:-1]:
        h = F.relu(h @ layer.weight.T + layer.bias)
    return (h @ layers[-1].weight.T + layers[-1].bias).squeeze(-1)


def naive_global(critic, a, b, perm):
    """The reference: the MLP on the concatenations [a, b] and [a, b shuffled]."""
    return naive_mlp(critic.layers, torch.cat([a, b], 1)), naive_mlp(critic.layers, torch.cat([a, b[perm]], 1))


def naive_local(critic, z, local, perm):
    """The reference: z tiled over the map, concatenated (z first) with C or C shuffled,
    then 1×1 convolutions on the NCHW map."""
    n, _, h, w = local.shape
    z_map = z[:, :, None, None].expand(n, z.shape[1], h, w)

    def conv_mlp(x):
        for layer in critic.layers[:-1]:
            x = F.relu(F.conv2d(x, layer.weight[:, :, None, None], layer.bias))
        last = critic.layers[-1]
        return F.conv2d(x, last.weight[:, :, None, None], last.bias)[:, 0]

    return conv_mlp(torch.cat([z_map, local], 1)), conv_mlp(torch.cat([z_map, local[perm]], 1))


def random_perm(n, gen):
    return torch.randperm(n, generator=gen)


@pytest.mark.parametrize("a_dim", [256, 96])
def test_global_critic_equals_naive_concat_float64(a_dim):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    critic = GlobalCritic(a_dim, 256).double()
    a = torch.randn(9, a_dim, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 256, generator=gen, dtype=torch.float64, requires_grad=True)
    perm = random_perm(9, gen)
    fast = critic(a, b, perm)
    naive = naive_global(critic, a, b, perm)
    for f, n in zip(fast, naive):
        assert f.shape == (9,)
        torch.testing.assert_close(f, n, rtol=1e-12, atol=1e-12)
    # gradients with respect to inputs and weights agree as well
    params = [a, b, *critic.parameters()]
    g_fast = torch.autograd.grad(fast[0].sum() - 2 * fast[1].sum(), params)
    g_naive = torch.autograd.grad(naive[0].sum() - 2 * naive[1].sum(), params)
    for gf, gn in zip(g_fast, g_naive):
        torch.testing.assert_close(gf, gn, rtol=1e-10, atol=1e-12)


def test_global_critic_zz_pairing_positive_is_z_with_itself():
    gen = torch.Generator().manual_seed(1)
    critic = GlobalCritic(8, 8, hidden=16).double()
    z = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    perm = torch.tensor([1, 2, 3, 4, 0])
    t_pos, t_neg = critic(z, z, perm)
    torch.testing.assert_close(t_pos, naive_mlp(critic.layers, torch.cat([z, z], 1)))
    torch.testing.assert_close(t_neg, naive_mlp(critic.layers, torch.cat([z, z[perm]], 1)))


@pytest.mark.parametrize("hw", [(4, 4), (3, 5)])
def test_local_critic_equals_naive_concat_conv_float64(hw):
    gen = torch.Generator().manual_seed(2)
    torch.manual_seed(2)
    critic = LocalCritic(256, 256).double()
    z = torch.randn(7, 256, generator=gen, dtype=torch.float64, requires_grad=True)
    local = torch.randn(7, 256, *hw, generator=gen, dtype=torch.float64, requires_grad=True)
    perm = random_perm(7, gen)
    fast = critic(z, local, perm)
    naive = naive_local(critic, z, local, perm)
    for f, n in zip(fast, naive):
        assert f.shape == (7, *hw)
        torch.testing.assert_close(f, n, rtol=1e-12, atol=1e-12)
    params = [z, local, *critic.parameters()]
    g_fast = torch.autograd.grad(fast[0].sum() + 3 * fast[1].sum(), params)
    g_naive = torch.autograd.grad(naive[0].sum() + 3 * naive[1].sum(), params)
    for gf, gn in zip(g_fast, g_naive):
        torch.testing.assert_close(gf, gn, rtol=1e-10, atol=1e-12)


def test_local_critic_accepts_channels_last():
    gen = torch.Generator().manual_seed(3)
    critic = LocalCritic(16, 32, hidden=8).double()
    z = torch.randn(4, 16, generator=gen, dtype=torch.float64)
    local = torch.randn(4, 32, 4, 4, generator=gen, dtype=torch.float64)
    perm = torch.tensor([3, 0, 1, 2])
    a = critic(z, local, perm)
    b = critic(z, local.contiguous(memory_format=torch.channels_last), perm)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_concat_mlp_scores_is_the_module_function():
    gen = torch.Generator().manual_seed(4)
    critic = GlobalCritic(3, 5, hidden=4).double()
    a = torch.randn(6, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    perm = torch.arange(6).flip(0)
    pos, neg = concat_mlp_scores(list(critic.layers), a, b, perm)
    torch.testing.assert_close(neg, naive_mlp(critic.layers, torch.cat([a, b.flip(0)], 1)))
    torch.testing.assert_close(pos, naive_mlp(critic.layers, torch.cat([a, b], 1)))


def test_critic_shapes_in_the_model():
    m = DIM(ModelConfig()).objective
    expected = [(256, 512), (256, 256), (256, 256), (1, 256)]
    assert [layer.weight.shape for layer in m.global_critic.layers] == expected
    assert [layer.weight.shape for layer in m.local_critic.layers] == expected
    xz = DIM(ModelConfig(z_dim=64), ObjectiveConfig(global_pairing="xz")).objective
    assert xz.global_critic.layers[0].weight.shape == (256, 256 + 64)
    assert xz.local_critic.layers[0].weight.shape == (256, 64 + 256)
