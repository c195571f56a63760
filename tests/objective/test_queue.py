"""The queue of past codes (MoCo): a ring buffer checked against a list, and the global term with
it against InfoNCE written out in float64 over the in-batch negatives and the queued keys."""

import math

import pytest
import torch

from infomax.errors import InfomaxError
from infomax.objective.config import ObjectiveConfig
from infomax.objective.loss import DIMLoss, Draws
from infomax.objective.queue import NegativeQueue
from tests.naive import dot_global_matrix, naive_embed, naive_estimator, naive_objective, positives_and_negatives
from tests.objective.test_loss import C, N, Z, seed_features


def test_push_keeps_the_newest_keys_oldest_out():
    queue = NegativeQueue(5, dim=2)
    kept: list[list[float]] = []
    value = 0.0
    for m in [2, 1, 3, 4, 7, 1]:  # pushes that wrap around, and one longer than the queue
        keys = torch.arange(value, value + m).repeat_interleave(2).view(m, 2)
        value += m
        queue.push(keys)
        kept = (kept + keys.tolist())[-5:]
        assert int(queue.count) == value
        assert sorted(queue.keys[: min(int(value), 5)].tolist()) == sorted(kept)  # slots fill 0, 1, ... first
    # slot of the key pushed t-th (from 0) is t mod 5
    assert queue.keys[:, 0].tolist() == [value - 5 + ((i - value) % 5) for i in range(5)]


def test_empty_slots_score_minus_infinity():
    queue = NegativeQueue(4, dim=3)
    u = torch.randn(2, 3, dtype=torch.float64)
    assert torch.isneginf(queue.scores(u)).all()
    keys = torch.randn(3, 3)
    queue.push(keys)
    got = queue.scores(u)
    torch.testing.assert_close(got[:, :3], u @ keys.double().T)
    assert torch.isneginf(got[:, 3]).all()


def queued(**options) -> DIMLoss:
    torch.manual_seed(1)
    cfg = ObjectiveConfig(estimator="infonce", critic="dot", negatives="all", critic_hidden=32, queue=3 * N, **options)
    return DIMLoss(cfg, z_dim=Z, local_channels=C, pooled_dim=C).double()


def naive_queued_global(loss, z, keys):
    """InfoNCE of view 1 against view 2 and back, averaged: each positive φ(z_i)·ψ(z'_i)/√d against
    every φ(z_i)·ψ(z'_j)/√d, j ≠ i, and φ(z_i)·k/√d for every stored key k (ψ of an earlier code)."""
    halves = [(slice(0, N), slice(N, 2 * N)), (slice(N, 2 * N), slice(0, N))]
    out = []
    for one, other in halves:
        pos, neg = positives_and_negatives(dot_global_matrix(loss.global_critic, z[one], z[other]), None)
        u = naive_embed(loss.global_critic.phi, z[one]) / math.sqrt(keys.shape[1])
        out.append(naive_estimator("infonce", pos, torch.cat([neg, u @ keys.T], 1)))
    return sum(out) / 2


def test_global_term_adds_the_queued_keys_as_negatives_and_queues_this_steps_codes():
    loss = queued()
    _, out = seed_features(views=2)
    gen = torch.Generator().manual_seed(3)
    eps = [torch.randn(2 * N, Z, generator=gen, dtype=torch.float64) for _ in range(3)]
    pushed = []
    for step in range(3):  # an empty queue, then 2N keys, then 3N (the oldest N replaced)
        got = loss.terms(*out, Draws(eps[step], None, None), views=2)
        z = out.mu + torch.exp(out.logvar / 2) * eps[step]
        held = torch.cat(pushed)[-3 * N:] if pushed else torch.zeros(0, 32, dtype=torch.float64)
        want = naive_objective(loss, out.mu, out.logvar, out.local, out.pooled, eps[step], None, None, views=2)
        torch.testing.assert_close(got["local"], want["local"], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got["global"], naive_queued_global(loss, z, held), rtol=1e-10, atol=1e-12)
        if step == 0:  # nothing queued: the plain two-view term
            torch.testing.assert_close(got["global"], want["global"], rtol=1e-10, atol=1e-12)
        else:  # more negatives: a larger loss
            assert got["global"] > want["global"] + 1e-6
        # the keys of this step: ψ(z) of view 2 (scored against view 1), then of view 1
        psi = naive_embed(loss.global_critic.psi, z)
        torch.testing.assert_close(got["queue_keys"], torch.cat([psi[N:], psi[:N]]), rtol=1e-10, atol=1e-12)
        assert not got["queue_keys"].requires_grad
        loss.queue.push(got.pop("queue_keys"))
        pushed.append(torch.cat([psi[N:], psi[:N]]).detach())


def test_forward_pushes_after_scoring_and_only_in_training():
    loss = queued()
    _, out = seed_features(views=2)
    _, terms = loss(*out, views=2, generator=torch.Generator().manual_seed(0))
    assert "queue_keys" not in terms and int(loss.queue.count) == 2 * N
    before = loss.queue.keys.clone()
    loss.eval()
    _, terms = loss(*out, views=2, generator=torch.Generator().manual_seed(1))
    assert "queue_keys" not in terms
    assert int(loss.queue.count) == 2 * N and torch.equal(loss.queue.keys, before)


def test_gradients_equal_the_written_out_term_with_the_keys_held_constant():
    loss = queued()
    loss.queue.push(torch.randn(2 * N, 32, dtype=torch.float64))  # slots 0 … 2N−1 of 3N filled
    encoder, out = seed_features(views=2)
    eps = torch.randn(2 * N, Z, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    params = [*encoder.parameters(), *loss.global_critic.parameters()]
    got = torch.autograd.grad(loss.terms(*out, Draws(eps, None, None), views=2)["global"], params,
                              retain_graph=True)
    z = out.mu + torch.exp(out.logvar / 2) * eps
    want = torch.autograd.grad(naive_queued_global(loss, z, loss.queue.keys[: 2 * N]), params, retain_graph=True)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-11)
    plain = naive_objective(loss, out.mu, out.logvar, out.local, out.pooled, eps, None, None, views=2)["global"]
    without = torch.autograd.grad(plain, params)
    assert any(not torch.allclose(a, b) for a, b in zip(got, without))  # the queued keys move the gradient


@pytest.mark.parametrize("options", [{"critic": "concat", "negatives": "shuffle"}, {"estimator": "jsd"},
                                     {"negatives": "derangement"}])
def test_queue_needs_infonce_over_all_pairs_of_dot_critics(options):
    settings = {"estimator": "infonce", "critic": "dot", "negatives": "all", "queue": 64, **options}
    with pytest.raises(InfomaxError, match="objective.queue = 64 adds negatives"):
        ObjectiveConfig(**settings)
