"""DIMLoss: the Deep InfoMax objective (Hjelm et al. 2019, "Learning deep representations by
mutual information estimation and maximization") with the VAE-style prior of the reference, as
one module that takes an encoder's features, not a model. It owns its critics, the estimator, the
negatives and the weights, so any encoder trains with it:

    z       = μ + exp(log σ² / 2)·ε                              (reparameterize, eq. of Kingma & Welling)
    global  = L(T_g(a_i, z_i), T_g(a_i, z_π(i)))                 a = z ("zz") or pooled ("xz")
    local   = L(T_l(z_i, C_i[p]), T_l(z_i, C_σ(i)[p]))           over every position p of C
    kl      = KL(N(μ, σ²) ‖ N(0, I))
    loss    = α·global + β·local + γ·kl,   α = 0.5, β = 1.5, γ = 0.01 (the reference)

L is the estimator (objective/estimators.py). π and σ are drawn independently, as the reference
does with two tf.random.shuffle calls; with negatives "all" every other image is a negative
instead (dot critics only). Options: the prior as DIM's adversarial matching (its discriminator
lives here), multi-scale local MI (the same term on the map one block before C, averaged in),
local–local MI (δ·local_local), two views (AMDIM): each term pairs one view against the
other, both ways, averaged, and small crops (SwAV's multi-crop): each crop's code against every
view's code (global) and map (local), each pair one more entry of the term's average, and a
queue of past codes (MoCo): more negatives of the global term (objective/queue.py).

    criterion = DIMLoss(ObjectiveConfig(), z_dim=256, local_channels=256)
    loss, terms = criterion(mu, logvar, local)            # one view, N rows
    loss, terms = criterion(mu, logvar, local, views=2)   # rows [view 1; view 2], 2N rows
    loss, terms = criterion(mu, logvar, local, views=2, small=encoder(crops))  # crops: M·N rows
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor, nn

from infomax.model.critics import GlobalCritic, LocalCritic
from infomax.model.dot_critic import DotGlobalCritic, DotLocalCritic, DotPositionCritic
from infomax.model.init import init_weights_
from infomax.model.prior_critic import PriorDiscriminator
from infomax.objective.config import ObjectiveConfig
from infomax.objective.estimators import ESTIMATORS
from infomax.objective.infonce import all_pairs, position_pairs
from infomax.objective.kl import kl_to_standard_normal
from infomax.objective.negatives import permutation
from infomax.objective.prior_matching import prior_matching_losses
from infomax.objective.queue import NegativeQueue

if TYPE_CHECKING:  # the encoder's outputs for small crops (only their fields are read)
    from infomax.model.encoder import EncoderOutput


class Draws(NamedTuple):
    """The randomness of one step: ε (V·N×z), the global and local critics' permutations (N, or
    None for all in-batch negatives), draws from the prior (N×z, adversarial prior only) and the
    small crops' ε (M·N×z, multi-crop only)."""

    eps: Tensor
    perm_global: Tensor | None
    perm_local: Tensor | None
    prior: Tensor | None = None
    eps_small: Tensor | None = None


def reparameterize(mu: Tensor, logvar: Tensor, eps: Tensor) -> Tensor:
    """Reparameterization trick (Kingma & Welling 2014): z = μ + exp(log σ² / 2)·ε, ε ~ N(0, I)."""
    return mu + torch.exp(0.5 * logvar) * eps


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


def crop_scores(critic: nn.Module, a: Tensor, b: Tensor, perm: Tensor | None) -> list[tuple[Tensor, Tensor]]:
    """pair_scores of each small crop's rows of a (M·N, crop-major) against b (N rows), one
    (t_pos, t_neg) per crop. With every other image as a negative, b is embedded once for all M."""
    n = b.shape[0]
    if perm is None:
        table = critic.matrix(a, b)  # M·N×N(×HW)
        return [all_pairs(table[start : start + n]) for start in range(0, a.shape[0], n)]
    return [pair_scores(critic, a[start : start + n], b, perm) for start in range(0, a.shape[0], n)]


def queued_scores(critic: nn.Module, a: Tensor, b: Tensor, queue: NegativeQueue,
                  keys: list[Tensor]) -> tuple[Tensor, Tensor]:
    """pair_scores of a dot critic with every other image as a negative, and every key in the
    queue as one more (objective/queue.py); appends this pair's keys ψ(b), detached, to `keys`."""
    u, v = critic.sides(a, b)  # N×d each
    keys.append(v.detach())
    t_pos, t_neg = all_pairs(u @ v.T)  # N, N×(N−1)
    return t_pos, torch.cat([t_neg, queue.scores(u)], dim=-1)  # N×(N−1+K)


def critic_pair(cfg: ObjectiveConfig, a_dim: int, z_dim: int, c_dim: int) -> tuple[nn.Module, nn.Module]:
    """The (global, local) critics named by cfg.critic: global scores a (a_dim) against z, local
    scores z against each position of a map of c_dim channels."""
    hidden = cfg.critic_hidden
    if cfg.critic == "dot":
        tau = cfg.temperature
        return DotGlobalCritic(a_dim, z_dim, hidden, hidden, tau), DotLocalCritic(z_dim, c_dim, hidden, hidden, tau)
    return GlobalCritic(a_dim, z_dim, hidden), LocalCritic(z_dim, c_dim, hidden)


class DIMLoss(nn.Module):
    """The objective for features of N images (or of V = 2 views of them, stacked view-major).

    z_dim: size of μ; local_channels: channels of the local map C; pooled_dim: size of the pooled
    vector (needed for global_pairing "xz"); middle_channels: channels of the map one block before
    C (needed for multiscale). init: "keras" (the reference) or "torch" for the critics' weights.
    """

    def __init__(self, cfg: ObjectiveConfig | None = None, *, z_dim: int, local_channels: int,
                 pooled_dim: int | None = None, middle_channels: int | None = None, init: str = "keras"):
        super().__init__()
        self.cfg = cfg = (cfg or ObjectiveConfig()).validate()
        if cfg.global_pairing == "xz" and pooled_dim is None:
            raise ValueError("global_pairing 'xz' scores the pooled vector: give pooled_dim")
        if cfg.multiscale and middle_channels is None:
            raise ValueError("multiscale scores the map one block before C: give middle_channels")
        a_dim = z_dim if cfg.global_pairing == "zz" else pooled_dim
        self.z_dim = z_dim
        self.global_critic, self.local_critic = critic_pair(cfg, a_dim, z_dim, local_channels)
        if cfg.multiscale:  # z against the map one block before C
            self.middle_critic = critic_pair(cfg, a_dim, z_dim, middle_channels)[1]
        if cfg.delta > 0:  # positions of C against positions of C
            self.local_local_critic = DotPositionCritic(local_channels, cfg.critic_hidden, cfg.critic_hidden,
                                                        cfg.temperature)
        if cfg.prior == "adversarial":  # tells N(0, I) draws from the encoder's z
            self.prior_critic = PriorDiscriminator(z_dim, cfg.critic_hidden)
        self.queue = NegativeQueue(cfg.queue, cfg.critic_hidden) if cfg.queue else None
        init_weights_(self, init)

    def draw(self, n: int, views: int, generator: torch.Generator | None, device: torch.device,
             dtype: torch.dtype = torch.float32, small: int = 0) -> Draws:
        """The step's randomness from `generator`: the two permutations, then ε (of the views, then of
        `small` crop rows) and the prior's draws (drawn in float32, then given `dtype`, so float64
        features see the same draws)."""
        neg = self.cfg.negatives
        perms = [None if neg == "all" else permutation(neg, n, generator=generator, device=device) for _ in "gl"]
        prior_rows = n if self.cfg.prior == "adversarial" else 0
        draw_device = generator.device if generator is not None else device
        eps = torch.randn((views * n + small + prior_rows, self.z_dim), generator=generator, device=draw_device)
        eps = eps.to(device, dtype, non_blocking=True)
        rows = views * n + small
        return Draws(eps[: views * n], perms[0], perms[1], eps[rows:] if prior_rows else None,
                     eps[views * n : rows] if small else None)

    def forward(self, mu: Tensor, logvar: Tensor, local: Tensor, pooled: Tensor | None = None,
                middle: Tensor | None = None, *, views: int = 1, generator: torch.Generator | None = None,
                small: EncoderOutput | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss, terms) for features of V·N rows: μ, log σ² V·N×z, the local map V·N×C×h×w, the
        pooled vector V·N×P and the middle map (each view's N rows together, view 1 first); `small`,
        the encoder's outputs for M small crops of the same images (M·N rows, crop-major).
        The loss is what to minimize (under the adversarial prior it includes the discriminator's
        own loss, whose gradients reach the discriminator only)."""
        dtype = torch.float64 if mu.dtype == torch.float64 else torch.float32
        small_rows = 0 if small is None else small.mu.shape[0]
        draws = self.draw(mu.shape[0] // views, views, generator, mu.device, dtype, small_rows)
        terms = self.terms(mu, logvar, local, pooled, middle, draws, views=views, small=small)
        keys = terms.pop("queue_keys", None)
        if keys is not None and self.training:  # after scoring: a step's own codes are never its negatives
            self.queue.push(keys)
        return self.total(terms), terms

    def total(self, terms: dict[str, Tensor]) -> Tensor:
        """α·global + β·local (+ δ·local_local) + γ·prior term (+ the discriminator's loss): the one sum."""
        loss = sum(w * terms[k] for k, w in self.cfg.weights.items())  # the terms are float32 or float64
        return loss + terms["prior_critic"] if "prior_critic" in terms else loss

    def terms(self, mu: Tensor, logvar: Tensor, local: Tensor, pooled: Tensor | None, middle: Tensor | None,
              draws: Draws, *, views: int = 1, small: EncoderOutput | None = None) -> dict[str, Tensor]:
        """The terms with the randomness given: "global", "local", "kl" (and "local_local", or "prior" and
        "prior_critic") as differentiable scalars, the critics' accuracies "*_acc" (detached) and, with
        a queue, "queue_keys": the keys to push once the step is scored (V·N×d, detached).
        Deterministic and free of host syncs, so it can be compiled as one graph."""
        cfg, loss = self.cfg, ESTIMATORS[self.cfg.estimator]
        z = reparameterize(mu, logvar, draws.eps)  # V·N×z
        a = z if cfg.global_pairing == "zz" else pooled
        n = mu.shape[0] // views
        # the rows of each view; one view is the whole batch, taken as is (a full slice would cost
        # its backward a zero-filled copy of the gradient)
        rows_of = [slice(None)] if views == 1 else [slice(0, n), slice(n, 2 * n)]
        pairs = [(rows_of[0], rows_of[0])] if views == 1 else [(rows_of[0], rows_of[1]), (rows_of[1], rows_of[0])]
        keys = ["global", "local"] + (["local_local"] if cfg.delta > 0 else [])
        parts: dict[str, list[Tensor]] = {k: [] for k in keys + [k + "_acc" for k in keys]}

        def add(key: str, scored: list[tuple[Tensor, Tensor]]) -> None:
            """One term: the mean of the estimator over the (t_pos, t_neg) pairs (scales) given."""
            parts[key].append(sum(loss(t_pos, t_neg) for t_pos, t_neg in scored) / len(scored))
            with torch.no_grad():
                parts[key + "_acc"].append(sum(critic_accuracy(p, q) for p, q in scored) / len(scored))

        def rows(t: Tensor, view: slice) -> Tensor:
            return t if view == slice(None) else t[view]

        keys: list[Tensor] = []  # the global critic's ψ(z) of this step, for the queue
        for one, other in pairs:
            if self.queue is not None:
                add("global", [queued_scores(self.global_critic, rows(a, one), rows(z, other), self.queue, keys)])
            else:
                add("global", [pair_scores(self.global_critic, rows(a, one), rows(z, other), draws.perm_global)])
            scored = [pair_scores(self.local_critic, rows(z, one), rows(local, other), draws.perm_local)]
            if cfg.multiscale:  # the same z against the map one block earlier
                scored.append(pair_scores(self.middle_critic, rows(z, one), rows(middle, other), draws.perm_local))
            add("local", scored)
            if cfg.delta > 0:
                table = self.local_local_critic.matrix(rows(local, one), rows(local, other))  # N×P×N×P
                add("local_local", [position_pairs(table, same_view=views == 1)])
        if small is not None:  # each small crop's code against every view's code and maps
            z_small = reparameterize(small.mu, small.logvar, draws.eps_small)  # M·N×z
            a_small = z_small if cfg.global_pairing == "zz" else small.pooled
            for view in rows_of:
                glob = crop_scores(self.global_critic, a_small, rows(z, view), draws.perm_global)
                scored = [crop_scores(self.local_critic, z_small, rows(local, view), draws.perm_local)]
                if cfg.multiscale:
                    scored.append(crop_scores(self.middle_critic, z_small, rows(middle, view), draws.perm_local))
                for crop, pair in enumerate(glob):
                    add("global", [pair])
                    add("local", [scales[crop] for scales in scored])
        terms = {k: sum(v) / len(v) for k, v in parts.items()}
        terms["kl"] = kl_to_standard_normal(mu, logvar, cfg.kl_reduction)
        if keys:
            terms["queue_keys"] = torch.cat(keys)  # 2N×d (V·N)
        if cfg.prior == "adversarial":
            if draws.prior is None:
                raise ValueError("prior = adversarial needs draws from the prior (Draws.prior, M×z)")
            terms["prior"], terms["prior_critic"] = prior_matching_losses(self.prior_critic, z, draws.prior)
        return terms
