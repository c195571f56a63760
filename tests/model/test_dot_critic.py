"""The encode-and-dot critics against their definition, T(a, b) = ⟨φ(a), ψ(b)⟩ / √d, in float64."""

import math

import torch
import torch.nn.functional as F

from infomax.model.dot_critic import DotGlobalCritic, DotLocalCritic


def embed(seq, h):
    first, last = seq[0], seq[2]
    return F.relu(h @ first.weight.T + first.bias) @ last.weight.T + last.bias


def test_global_scores_pairs_and_matrix():
    torch.manual_seed(0)
    critic = DotGlobalCritic(5, 7, hidden=6, dim=4).double()
    a, b = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 7, dtype=torch.float64)
    perm = torch.tensor([2, 0, 1, 5, 3, 4])
    want = torch.empty(6, 6, dtype=torch.float64)
    for i in range(6):
        for j in range(6):
            want[i, j] = embed(critic.phi, a[i]) @ embed(critic.psi, b[j]) / math.sqrt(4)
    torch.testing.assert_close(critic.matrix(a, b), want, rtol=1e-12, atol=1e-12)
    t_pos, t_neg = critic(a, b, perm)
    torch.testing.assert_close(t_pos, want.diagonal(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_neg, want[torch.arange(6), perm], rtol=1e-12, atol=1e-12)


def test_local_scores_every_position_of_every_image():
    torch.manual_seed(1)
    critic = DotLocalCritic(3, 5, hidden=4, dim=6).double()
    z = torch.randn(4, 3, dtype=torch.float64)
    local = torch.randn(4, 5, 2, 3, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    perm = torch.tensor([1, 2, 3, 0])
    want = torch.empty(4, 4, 2, 3, dtype=torch.float64)
    for i in range(4):
        for j in range(4):
            for y in range(2):
                for x in range(3):
                    want[i, j, y, x] = embed(critic.phi, z[i]) @ embed(critic.psi, local[j, :, y, x]) / math.sqrt(6)
    torch.testing.assert_close(critic.matrix(z, local), want.flatten(2), rtol=1e-12, atol=1e-12)
    t_pos, t_neg = critic(z, local, perm)
    torch.testing.assert_close(t_pos, want[torch.arange(4), torch.arange(4)], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_neg, want[torch.arange(4), perm], rtol=1e-12, atol=1e-12)


def test_temperature_scores_the_cosine_over_tau():
    torch.manual_seed(2)
    critic = DotGlobalCritic(5, 7, hidden=6, dim=4, temperature=0.2).double()
    local_critic = DotLocalCritic(5, 7, hidden=6, dim=4, temperature=0.2).double()
    local_critic.load_state_dict(critic.state_dict())  # same φ, ψ
    a, b = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 7, dtype=torch.float64)
    want = torch.empty(6, 6, dtype=torch.float64)
    for i in range(6):
        u = embed(critic.phi, a[i])
        for j in range(6):
            v = embed(critic.psi, b[j])
            want[i, j] = (u @ v) / (u.norm() * v.norm()) / 0.2
    torch.testing.assert_close(critic.matrix(a, b), want, rtol=1e-12, atol=1e-12)
    assert critic.matrix(a, b).abs().max() <= 1 / 0.2 + 1e-12
    # the local critic on a 1×1 map is the global critic
    torch.testing.assert_close(local_critic.matrix(a, b[:, :, None, None]).squeeze(-1), want, rtol=1e-12, atol=1e-12)
