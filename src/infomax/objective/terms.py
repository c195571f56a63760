"""The DIM objective for one batch (Hjelm et al. 2019, with the VAE-style prior of the
reference): a global and a local Jensen-Shannon MI term and a KL prior term.

    z       = μ + exp(log σ² / 2)·ε                              (reparameterize)
    global  = L_JSD(T_g(a_i, z_i), T_g(a_i, z_π(i)))             a = z ("zz") or pooled ("xz")
    local   = L_JSD(T_l(z_i, C_i[p]), T_l(z_i, C_π(i)[p]))       over every position p of C
    kl      = KL(N(μ, σ²) ‖ N(0, I))
    loss    = α·global + β·local + γ·kl,   α = 0.5, β = 1.5, γ = 0.01

One permutation π (a derangement by default) serves both MI terms.
"""

from __future__ import annotations

import torch
from torch import Tensor

from infomax.model.dim import DIM
from infomax.model.encoder import reparameterize
from infomax.objective.jsd import jsd_loss
from infomax.objective.kl import kl_to_standard_normal
from infomax.objective.negatives import permutation

# The reference's weights α, β, γ of the three terms.
LOSS_WEIGHTS = {"global": 0.5, "local": 1.5, "kl": 0.01}


def critic_accuracy(t_pos: Tensor, t_neg: Tensor) -> Tensor:
    """Fraction of pairs the critic classifies right (positive logit > 0, negative < 0)."""
    right = (t_pos > 0).float().sum() + (t_neg < 0).float().sum()
    return right / (t_pos.numel() + t_neg.numel())


def dim_terms(
    model: DIM,
    x: Tensor,
    *,
    generator: torch.Generator | None = None,
    negatives: str = "derangement",
) -> dict[str, Tensor]:
    """The loss terms for a batch x: N×C×H×W float (N >= 2).

    Returns scalar tensors: "global", "local", "kl" (differentiable; combine them with
    weighted_loss) and, for logging only (detached), "global_acc" and "local_acc".
    `generator` drives ε and the permutation; `negatives` is "derangement" or "shuffle".
    """
    n = x.shape[0]
    perm = permutation(negatives, n, generator=generator, device=x.device)
    eps = _standard_normal((n, model.cfg.z_dim), generator, x.device)
    return dim_terms_given(model, x, eps, perm)


def dim_terms_given(model: DIM, x: Tensor, eps: Tensor, perm: Tensor) -> dict[str, Tensor]:
    """dim_terms with its randomness given: ε (N×z, N(0, I)) and the permutation π (N long).
    Deterministic and free of host syncs, so it can be compiled as one graph."""
    cfg = model.cfg
    out = model.encoder(x)
    z = reparameterize(out.mu, out.logvar, eps)  # N×z
    a = z if cfg.global_pairing == "zz" else out.pooled
    g_pos, g_neg = model.global_critic(a, z, perm)  # N, N
    l_pos, l_neg = model.local_critic(z, out.local, perm)  # N×4×4, N×4×4
    terms = {
        "global": jsd_loss(g_pos, g_neg),
        "local": jsd_loss(l_pos, l_neg),
        "kl": kl_to_standard_normal(out.mu, out.logvar, cfg.kl_reduction),
    }
    with torch.no_grad():
        terms["global_acc"] = critic_accuracy(g_pos, g_neg)
        terms["local_acc"] = critic_accuracy(l_pos, l_neg)
    return terms


def weighted_loss(terms: dict[str, Tensor], weights: dict[str, float] = LOSS_WEIGHTS) -> Tensor:
    """α·global + β·local + γ·kl (the keys of `weights` select the terms)."""
    return sum(w * terms[k] for k, w in weights.items())


def _standard_normal(shape: tuple[int, int], generator: torch.Generator | None, device: torch.device) -> Tensor:
    # ε ~ N(0, I) in float32, drawn on the generator's device and moved to the model's.
    draw_device = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=draw_device).to(device, non_blocking=True)
