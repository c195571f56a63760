import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from infomax.objective.infonce import all_pairs, infonce_loss


def loop_infonce(t_pos, negatives_of):
    # float64 loop: mean over positives of −log(e^{T⁺} / (e^{T⁺} + Σ_k e^{T⁻_k}))
    terms = []
    for index, pos in np.ndenumerate(t_pos):
        negs = negatives_of(index)
        terms.append(-math.log(math.exp(pos) / (math.exp(pos) + sum(math.exp(n) for n in negs))))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_float64_formula_with_own_negatives(seed):
    rng = np.random.default_rng(seed)
    t_pos, t_neg = rng.normal(0, 2, (6, 3)), rng.normal(0, 2, (6, 3, 5))
    got = infonce_loss(torch.from_numpy(t_pos), torch.from_numpy(t_neg))
    assert got.dim() == 0 and got.dtype == torch.float64
    assert got.item() == pytest.approx(loop_infonce(t_pos, lambda ix: t_neg[ix]), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_float64_formula_with_shared_negatives(seed):
    # t_pos N×P, t_neg N×1×K: every position of image i against the same K negatives
    rng = np.random.default_rng(seed)
    t_pos, t_neg = rng.normal(0, 2, (4, 7)), rng.normal(0, 2, (4, 1, 5))
    got = infonce_loss(torch.from_numpy(t_pos), torch.from_numpy(t_neg))
    assert got.item() == pytest.approx(loop_infonce(t_pos, lambda ix: t_neg[ix[0], 0]), rel=1e-12)
    got32 = infonce_loss(torch.from_numpy(t_pos).float(), torch.from_numpy(t_neg).float())
    assert got32.item() == pytest.approx(got.item(), rel=1e-5)


def test_bfloat16_scores_are_upcast():
    rng = np.random.default_rng(3)
    t_pos, t_neg = torch.from_numpy(rng.normal(1, 2, (8, 4))), torch.from_numpy(rng.normal(0, 2, (8, 1, 9)))
    got = infonce_loss(t_pos.bfloat16(), t_neg.bfloat16())
    assert got.dtype == torch.float32
    p16, n16 = t_pos.bfloat16().double().numpy(), t_neg.bfloat16().double().numpy()
    assert got.item() == pytest.approx(loop_infonce(p16, lambda ix: n16[ix[0], 0]), rel=1e-5)
    want = loop_infonce(t_pos.numpy(), lambda ix: t_neg.numpy()[ix[0], 0])
    assert got.item() == pytest.approx(want, abs=0.05)  # bf16 rounding


def test_one_negative_per_positive_is_softplus_of_the_margin():
    rng = np.random.default_rng(4)
    t_pos = torch.from_numpy(rng.normal(0, 3, 32))
    t_neg = t_pos[torch.from_numpy(rng.permutation(32))].unsqueeze(-1)
    want = F.softplus(t_neg.squeeze(-1) - t_pos).mean()
    torch.testing.assert_close(infonce_loss(t_pos, t_neg), want)


def test_chance_level_and_bound():
    # all scores equal: the positive is one of K + 1 equally likely candidates
    k = 9
    loss = infonce_loss(torch.zeros(4, 3), torch.zeros(4, 1, k))
    assert loss.item() == pytest.approx(math.log(k + 1))  # bound log(K + 1) − loss = 0


def test_all_pairs_global_equals_cross_entropy():
    rng = np.random.default_rng(5)
    scores = torch.from_numpy(rng.normal(0, 3, (6, 6)))
    t_pos, t_neg = all_pairs(scores)
    assert t_pos.shape == (6,) and t_neg.shape == (6, 5)
    want = F.cross_entropy(scores, torch.arange(6))
    torch.testing.assert_close(infonce_loss(t_pos, t_neg), want)


def test_all_pairs_local_matches_float64_loop():
    rng = np.random.default_rng(6)
    n, p = 4, 5
    s = rng.normal(0, 2, (n, n, p))  # s[i, j, q] = T(z_i, C_j[q])
    t_pos, t_neg = all_pairs(torch.from_numpy(s))
    assert t_pos.shape == (n, p) and t_neg.shape == (n, 1, (n - 1) * p)
    terms = []
    for i in range(n):
        for q in range(p):
            pos = math.exp(s[i, i, q])
            negs = sum(math.exp(s[i, j, r]) for j in range(n) if j != i for r in range(p))
            terms.append(-math.log(pos / (pos + negs)))
    assert infonce_loss(t_pos, t_neg).item() == pytest.approx(sum(terms) / len(terms), rel=1e-12)


@pytest.mark.parametrize("shape", [(5, 5), (4, 4, 3), (3, 3, 2, 2)])
def test_all_pairs_selects_diagonal_and_off_diagonal(shape):
    scores = torch.arange(math.prod(shape), dtype=torch.float64).reshape(shape)
    t_pos, t_neg = all_pairs(scores)
    n, rest = shape[0], shape[2:]
    assert t_pos.shape == (n, *rest)
    assert t_neg.shape == (n, *(1 for _ in rest), (n - 1) * math.prod(rest))
    for i in range(n):
        torch.testing.assert_close(t_pos[i], scores[i, i])
        off = [scores[i, j].flatten() for j in range(n) if j != i]
        torch.testing.assert_close(t_neg[i].flatten(), torch.cat(off))


def test_all_pairs_rejects_non_square():
    with pytest.raises(ValueError):
        all_pairs(torch.zeros(3, 4))
    with pytest.raises(ValueError):
        all_pairs(torch.zeros(3))


def test_rejects_negatives_that_do_not_fit():
    with pytest.raises(ValueError):
        infonce_loss(torch.zeros(4), torch.zeros(3, 2))
    with pytest.raises(ValueError):
        infonce_loss(torch.zeros(4), torch.zeros(4, 0))
    with pytest.raises(ValueError):  # S' must broadcast to S, not enlarge it
        infonce_loss(torch.zeros(4), torch.zeros(2, 4, 3))


def test_gradient():
    t_pos = torch.tensor([0.3, -1.2], dtype=torch.float64, requires_grad=True)
    t_neg = torch.tensor([[-0.5, 0.7], [1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    infonce_loss(t_pos, t_neg).backward()
    # softmax over (pos, negs): d/dT⁺ = (p⁺ − 1)/n, d/dT⁻_k = p_k/n
    probs = torch.softmax(torch.cat([t_pos.detach()[:, None], t_neg.detach()], 1), 1)
    torch.testing.assert_close(t_pos.grad, (probs[:, 0] - 1) / 2)
    torch.testing.assert_close(t_neg.grad, probs[:, 1:] / 2)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_scores_are_finite(sign):
    t_pos = (torch.tensor([1e4, -1e4, 0.0]) * sign).requires_grad_(True)
    t_neg = (torch.tensor([[-1e4, 1e4], [1e4, 1e4], [0.0, -1e4]]) * sign).requires_grad_(True)
    loss = infonce_loss(t_pos, t_neg)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(t_pos.grad).all() and torch.isfinite(t_neg.grad).all()


def test_all_pairs_extreme_scores_are_finite():
    scores = torch.tensor([[1e4, -1e4, 1e4], [-1e4, -1e4, 1e4], [0.0, 1e4, 1e4]]).requires_grad_(True)
    loss = infonce_loss(*all_pairs(scores))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(scores.grad).all()


@pytest.mark.parametrize("same_view", [True, False])
def test_position_pairs_against_a_loop(same_view):
    from infomax.objective.infonce import position_pairs

    n, p = 3, 4
    scores = torch.randn(n, p, n, p, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t_pos, t_neg = position_pairs(scores, same_view)
    q = p - 1 if same_view else p
    assert t_pos.shape == (n, p, q) and t_neg.shape == (n, p, 1, (n - 1) * p)
    for i in range(n):
        for a in range(p):
            want_pos = [scores[i, a, i, b] for b in range(p) if not (same_view and b == a)]
            want_neg = [scores[i, a, j, b] for j in range(n) if j != i for b in range(p)]
            assert t_pos[i, a].tolist() == torch.stack(want_pos).tolist()
            assert t_neg[i, a, 0].tolist() == torch.stack(want_neg).tolist()


@pytest.mark.parametrize("seed", [0, 1])
def test_negatives_spread_over_hundreds_match_the_formula_and_its_gradient(seed):
    # rows of 300 negatives spread over ±400: most lie far more than FLOOR below their row's largest
    rng = np.random.default_rng(seed)
    t_pos, t_neg = rng.normal(0, 80, 5), rng.normal(0, 80, (5, 300))
    got = infonce_loss(torch.from_numpy(t_pos), torch.from_numpy(t_neg))
    assert got.item() == pytest.approx(loop_infonce(t_pos, lambda ix: t_neg[ix]), rel=1e-12)
    pos, neg = torch.tensor(t_pos, requires_grad=True), torch.tensor(t_neg, requires_grad=True)
    infonce_loss(pos, neg).backward()
    logits = torch.cat([torch.from_numpy(t_pos)[:, None], torch.from_numpy(t_neg)], 1)  # the positive is class 0
    want = (torch.softmax(logits, 1) - F.one_hot(torch.zeros(5, dtype=torch.long), 301)) / 5
    torch.testing.assert_close(pos.grad, want[:, 0], rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(neg.grad, want[:, 1:], rtol=1e-10, atol=1e-14)


def test_minus_infinity_negatives_count_for_nothing():
    t_pos, t_neg = torch.tensor([0.5, -1.0], dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)
    padded = torch.cat([t_neg, torch.full((2, 3), float("-inf"), dtype=torch.float64)], 1).requires_grad_()
    got = infonce_loss(t_pos, padded)
    torch.testing.assert_close(got, infonce_loss(t_pos, t_neg), rtol=1e-15, atol=0)
    got.backward()
    assert torch.equal(padded.grad[:, 4:], torch.zeros(2, 3, dtype=torch.float64))
    assert torch.isfinite(padded.grad).all()
