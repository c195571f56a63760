"""The DIM objective for one batch (Hjelm et al. 2019, with the VAE-style prior of the
reference): a global and a local mutual-information term and a KL prior term.

    z       = μ + exp(log σ² / 2)·ε                              (reparameterize)
    global  = L(T_g(a_i, z_i), T_g(a_i, z_π(i)))                 a = z ("zz") or pooled ("xz")
    local   = L(T_l(z_i, C_i[p]), T_l(z_i, C_π(i)[p]))           over every position p of C
    kl      = KL(N(μ, σ²) ‖ N(0, I))
    loss    = α·global + β·local + γ·kl,   α = 0.5, β = 1.5, γ = 0.01

The prior term may instead be DIM's adversarial prior matching (objective/prior_matching.py:
γ·E[softplus(−D(z))] for the encoder, and the discriminator D trained beside it) or left out.

Further terms of the write-up, as options: multi-scale (the local term averaged with the same
term on the map one block before C) and local–local MI (δ·local_local: positions of the same
image are positives, positions of other images negatives; dot critic).

L is the estimator (Jensen-Shannon for the reference; InfoNCE, Donsker-Varadhan or squared
Hellinger as options). One permutation π (a derangement by default) serves both MI terms; with
negatives "all" every other image of the batch is a negative instead (dot critics only).

With two views x, x' of the same images (AMDIM, Bachman et al. 2019) each term pairs one view
against the other, both ways: global T_g(a_i, z'_i), local T_l(z_i, C'_i[p]), and the
symmetric halves, averaged. One view is the special case x' = x.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from infomax.model.dim import DIM
from infomax.model.encoder import reparameterize
from infomax.objective.estimators import ESTIMATORS
from infomax.objective.infonce import all_pairs, position_pairs
from infomax.objective.kl import kl_to_standard_normal
from infomax.objective.negatives import permutation
from infomax.objective.prior_matching import prior_matching_losses

# The reference's weights α, β, γ of the three terms.
LOSS_WEIGHTS = {"global": 0.5, "local": 1.5, "kl": 0.01}


def critic_accuracy(t_pos: Tensor, t_neg: Tensor) -> Tensor:
    """Fraction of positives the critic scores above every one of their negatives
    (t_neg: the negatives of each positive along its last dim, its other dims broadcasting to t_pos's)."""
    return (t_pos > t_neg.amax(-1)).float().mean()


def pair_scores(critic: nn.Module, a: Tensor, b: Tensor, perm: Tensor | None) -> tuple[Tensor, Tensor]:
    """(t_pos, t_neg) of one critic: t_neg carries each positive's negatives in its last dim,
    one (b_π(i)) for a permutation, or every other image's when perm is None."""
    if perm is None:
        return all_pairs(critic.matrix(a, b))
    t_pos, t_neg = critic(a, b, perm)
    return t_pos, t_neg.unsqueeze(-1)


def dim_terms(
    model: DIM,
    x: Tensor,
    *,
    generator: torch.Generator | None = None,
    negatives: str = "derangement",
    estimator: str = "jsd",
    x2: Tensor | None = None,
) -> dict[str, Tensor]:
    """The loss terms for a batch x: N×C×H×W float (N >= 2), and optionally a second view x2.

    Returns scalar tensors: "global", "local", "kl" (differentiable; combine them with
    weighted_loss) and, for logging only (detached), "global_acc" and "local_acc". With
    adversarial prior matching also "prior" (the encoder's side, weighted by γ in place of "kl")
    and "prior_critic" (the discriminator's loss, added unweighted: it trains D only).
    `generator` drives ε and the permutation; `negatives` is "derangement", "shuffle" or "all".
    """
    n, views = x.shape[0], 1 if x2 is None else 2
    perm = None if negatives == "all" else permutation(negatives, n, generator=generator, device=x.device)
    draws = views + (model.cfg.prior == "adversarial")  # the last N rows: draws from the prior
    eps = _standard_normal((draws * n, model.cfg.z_dim), generator, x.device)
    prior = eps[views * n :] if model.cfg.prior == "adversarial" else None
    return dim_terms_given(model, x, eps[: views * n], perm, estimator=estimator, x2=x2, prior=prior)


def dim_terms_given(model: DIM, x: Tensor, eps: Tensor, perm: Tensor | None, *, estimator: str = "jsd",
                    x2: Tensor | None = None, prior: Tensor | None = None) -> dict[str, Tensor]:
    """dim_terms with its randomness given: ε (V·N×z, N(0, I), V views stacked), the
    permutation π (N long, or None for all in-batch negatives) and, for adversarial prior
    matching, draws from the prior (M×z). Deterministic and free of host syncs, so it can be
    compiled as one graph."""
    cfg, loss = model.cfg, ESTIMATORS[estimator]
    out = model.encoder(x if x2 is None else torch.cat([x, x2]))  # both views in one pass
    z = reparameterize(out.mu, out.logvar, eps)  # V·N×z
    a = z if cfg.global_pairing == "zz" else out.pooled
    # the rows of each view; one view is the whole batch, taken as is (a full slice would cost
    # its backward a zero-filled copy of the gradient)
    views = [slice(None)] if x2 is None else [slice(0, len(x)), slice(len(x), 2 * len(x))]
    pairs = [(views[0], views[0])] if x2 is None else [(views[0], views[1]), (views[1], views[0])]
    keys = ["global", "local"] + (["local_local"] if cfg.local_local else [])
    parts: dict[str, list[Tensor]] = {k: [] for k in keys + [k + "_acc" for k in keys]}

    def add(key: str, scored: list[tuple[Tensor, Tensor]]) -> None:
        """One term: the mean of the estimator over the (t_pos, t_neg) pairs (scales) given."""
        parts[key].append(sum(loss(t_pos, t_neg) for t_pos, t_neg in scored) / len(scored))
        with torch.no_grad():
            parts[key + "_acc"].append(sum(critic_accuracy(t_pos, t_neg) for t_pos, t_neg in scored) / len(scored))

    def rows(t: Tensor, view: slice) -> Tensor:
        return t if view == slice(None) else t[view]

    for one, other in pairs:
        add("global", [pair_scores(model.global_critic, rows(a, one), rows(z, other), perm)])  # N, N×K
        local = [pair_scores(model.local_critic, rows(z, one), rows(out.local, other), perm)]  # N×positions, …×K
        if cfg.multiscale:  # the same z against the map one block earlier
            local.append(pair_scores(model.middle_critic, rows(z, one), rows(out.middle, other), perm))
        add("local", local)
        if cfg.local_local:
            scores = model.local_local_critic.matrix(rows(out.local, one), rows(out.local, other))  # N×P×N×P
            add("local_local", [position_pairs(scores, same_view=x2 is None)])
    terms = {k: sum(v) / len(v) for k, v in parts.items()}
    terms["kl"] = kl_to_standard_normal(out.mu, out.logvar, cfg.kl_reduction)
    if cfg.prior == "adversarial":
        if prior is None:
            raise ValueError("prior = adversarial needs draws from the prior (prior=M×z)")
        terms["prior"], terms["prior_critic"] = prior_matching_losses(model.prior_critic, z, prior)
    return terms


def weighted_loss(terms: dict[str, Tensor], weights: dict[str, float] = LOSS_WEIGHTS) -> Tensor:
    """α·global + β·local + γ·kl (the keys of `weights` select the terms)."""
    return sum(w * terms[k] for k, w in weights.items())


def _standard_normal(shape: tuple[int, int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    # ε ~ N(0, I) in float32, drawn on the generator's device and moved to the model's.
    draw_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=draw_device).to(device, non_blocking=True)
