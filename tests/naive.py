"""The DIM objective written out the reference's way, for tests: explicit concatenations, z tiled
over the map, one loop-free formula per estimator, in whatever dtype the inputs have (float64 in
the tests). Nothing here calls the library's objective code."""

import math

import torch
import torch.nn.functional as F

from infomax.objective.loss import Draws


def naive_mlp(layers, h):
    """The concat critic's MLP: Linear, ReLU, ..., Linear -> one logit (last dim dropped)."""
    for layer in layers[:-1]:
        h = F.relu(h @ layer.weight.T + layer.bias)
    return (h @ layers[-1].weight.T + layers[-1].bias).squeeze(-1)


def naive_embed(seq, h):
    """A dot critic's side φ or ψ: Linear -> ReLU -> Linear."""
    return F.relu(h @ seq[0].weight.T + seq[0].bias) @ seq[2].weight.T + seq[2].bias


def concat_global(critic, a, b, perm):
    """T([a_i, b_i]) and T([a_i, b_π(i)]): N each."""
    return naive_mlp(critic.layers, torch.cat([a, b], 1)), naive_mlp(critic.layers, torch.cat([a, b[perm]], 1))


def concat_local(critic, z, local, perm):
    """z tiled over the map and concatenated (z first) with C or C shuffled: N×h×w each."""
    n, c, h, w = local.shape
    z_map = z[:, None, None, :].expand(n, h, w, z.shape[1])
    c_nhwc = local.permute(0, 2, 3, 1)
    return (naive_mlp(critic.layers, torch.cat([z_map, c_nhwc], -1)),
            naive_mlp(critic.layers, torch.cat([z_map, c_nhwc[perm]], -1)))


def dot_global_matrix(critic, a, b):
    """M[i, j] = φ(a_i)·ψ(b_j)/√d (temperature 0): N×N."""
    u, v = naive_embed(critic.phi, a), naive_embed(critic.psi, b)
    return torch.einsum("id,jd->ij", u, v) / math.sqrt(u.shape[-1])


def dot_local_matrix(critic, z, local):
    """M[i, j, y, x] = φ(z_i)·ψ(C_j[y, x])/√d: N×N×h×w."""
    u, v = naive_embed(critic.phi, z), naive_embed(critic.psi, local.permute(0, 2, 3, 1))
    return torch.einsum("id,jyxd->ijyx", u, v) / math.sqrt(u.shape[-1])


def positives_and_negatives(matrix, perm):
    """From all-pairs scores M[i, j, ...]: each positive M[i, i, ...] (flat, S) with its negatives
    (S×K): M[i, π(i), ...] (K = 1), or with perm None every M[i, j, q] for j ≠ i and every q."""
    n = matrix.shape[0]
    pos = torch.stack([matrix[i, i] for i in range(n)])  # N×...
    if perm is not None:
        neg = torch.stack([matrix[i, int(perm[i])] for i in range(n)])
        return pos.reshape(-1), neg.reshape(-1, 1)
    rows = []
    for i in range(n):
        others = torch.cat([matrix[i, j].reshape(-1) for j in range(n) if j != i])
        rows += [others] * matrix[i, i].numel()
    return pos.reshape(-1), torch.stack(rows)


def naive_estimator(name, pos, neg):
    """The loss of estimator `name` from positives S and their negatives S×K."""
    if name == "jsd":
        return -(torch.log(torch.sigmoid(pos)).mean() + torch.log(1 - torch.sigmoid(neg)).mean())
    if name == "dv":
        return -(pos.mean() - torch.log(torch.exp(neg).mean()))
    if name == "hellinger":
        return torch.exp(-pos).mean() + torch.exp(neg).mean() - 2
    if name == "infonce":
        return -(pos - torch.log(torch.exp(pos) + torch.exp(neg).sum(1))).mean()
    raise ValueError(name)


def naive_kl(mu, logvar):
    return -0.5 * (1 + logvar - mu**2 - logvar.exp()).mean()


def naive_objective(loss, mu, logvar, local, pooled, eps, perm_global, perm_local, views=1):
    """{"global", "local", "kl"} of DIMLoss `loss` (its critics, estimator, pairing) from features
    of V·N rows, by the formulas above. Two views: each term pairs one view against the other,
    both ways, averaged."""
    cfg = loss.cfg
    z = mu + torch.exp(logvar / 2) * eps
    a = z if cfg.global_pairing == "zz" else pooled
    n = len(mu) // views
    parts = [slice(None)] if views == 1 else [slice(0, n), slice(n, 2 * n)]
    pairs = [(parts[0], parts[0])] if views == 1 else [(parts[0], parts[1]), (parts[1], parts[0])]
    glob, loc = [], []
    for one, other in pairs:
        if cfg.critic == "concat":
            gp, gn = concat_global(loss.global_critic, a[one], z[other], perm_global)
            lp, ln = concat_local(loss.local_critic, z[one], local[other], perm_local)
            g = (gp, gn[:, None])
            lo = (lp.reshape(-1), ln.reshape(-1, 1))
        else:
            g = positives_and_negatives(dot_global_matrix(loss.global_critic, a[one], z[other]), perm_global)
            lo = positives_and_negatives(dot_local_matrix(loss.local_critic, z[one], local[other]), perm_local)
        glob.append(naive_estimator(cfg.estimator, *g))
        loc.append(naive_estimator(cfg.estimator, *lo))
    return {"global": sum(glob) / len(glob), "local": sum(loc) / len(loc), "kl": naive_kl(mu, logvar)}


def terms_given(model, x, eps, perm_global, perm_local, x2=None, prior=None):
    """DIM.loss's terms with its randomness given: both views through the encoder in one pass."""
    out = model.encoder(x if x2 is None else torch.cat([x, x2]))
    draws = Draws(eps, perm_global, perm_local, prior)
    return model.objective.terms(*out, draws, views=1 if x2 is None else 2)
