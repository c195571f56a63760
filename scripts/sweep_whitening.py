"""Choose the whitening's power, and whether to average each image with its mirror, on held-out
train images: no test image is looked at.

    .venv/bin/python scripts/sweep_whitening.py --checkpoint RUN --data SPEC --powers 0.25,0.3,0.35

A seeded draw of --held-out labelled train images are the queries, the rest of the train split
the gallery; the whitening is fitted on --fit images of that gallery (as `run.whiten` draws
them), for μ and for μ averaged with its mirror (model/mirror.py), at each power. Prints the
kNN and retrieval scores of `infomax eval` (in %) for each, with the machine and the command.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch


def main() -> int:
    from infomax.data import load
    from infomax.device import describe_machine
    from infomax.embed.embedder import Embedder
    from infomax.embed.run import read_at_model_size
    from infomax.eval.knn import knn_accuracies, topk_neighbours
    from infomax.eval.retrieval import retrieval_metrics
    from infomax.model.whitening import moments, whiten, whitening_matrix

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="run folder, checkpoint or pretrained:NAME")
    p.add_argument("--data", help="data spec with labelled train images (default: the one it was trained on)")
    p.add_argument("--powers", default="0.25,0.3,0.35", help="comma-separated powers p (default 0.25,0.3,0.35)")
    p.add_argument("--held-out", type=int, default=5000, help="train images used as queries (default 5000)")
    p.add_argument("--fit", type=int, default=10240, help="gallery images the whitening is fitted on (default 10240)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    embedder = Embedder.from_checkpoint(args.checkpoint, device="cpu")
    embedder.mirror = False  # both variants are built here from μ(x) and μ(x̄)
    spec = read_at_model_size(args.data, embedder) if args.data else embedder.config["data"]["spec"]
    dataset = load(spec, progress=False)
    train = dataset.splits[dataset.train_split]
    if train.labels is None or len(train) <= args.held_out:
        sys.exit(f"{spec}: its train split needs labels and more than --held-out {args.held_out} images")
    labels = np.asarray(train.labels, dtype=np.int64)
    order = np.random.default_rng(args.seed).permutation(len(train))
    queries, gallery = np.sort(order[: args.held_out]), np.sort(order[args.held_out :])
    fit = gallery[np.random.default_rng(args.seed + 1).permutation(len(gallery))[: args.fit]]
    images = np.asarray(train.images)
    mu = embedder.embed_features(images, ("mu",))["mu"]  # N×z
    mirrored = embedder.embed_features(np.ascontiguousarray(images[..., ::-1]), ("mu",))["mu"]
    codes = {"μ": torch.from_numpy(mu).double(), "μ and its mirror": torch.from_numpy((mu + mirrored) / 2).double()}

    print(f"{'feature':18s} {'p':>5s}  kNN w200  kNN 1  kNN 10  kNN 20   P@10  mAP@100")
    for name, z in codes.items():
        mean, cov = moments(z[fit].sum(0), z[fit].T @ z[fit], len(fit))
        for power in (float(s) for s in args.powers.split(",")):
            y = whiten(z, mean, whitening_matrix(cov, power)).float().numpy()
            k = min(200, len(gallery))  # fewer on a small gallery, as infomax eval does
            scores, index = topk_neighbours(y[queries], y[gallery], k)
            found = labels[gallery][index]
            r = knn_accuracies(scores, found, labels[queries], int(labels.max()) + 1)
            # P@10 and mAP@100 need 100 neighbours (infomax eval leaves them out below that)
            r.update(retrieval_metrics(found, labels[queries], labels[gallery]) if k >= 100 else
                     {"precision@10": np.nan, "map@100": np.nan})
            print(f"{name:18s} {power:5.3g}  " + "  ".join(f"{100 * v:6.2f}" for v in r.values()), flush=True)
    print(f"{len(queries)} held-out train queries, gallery {len(gallery)}, fit on {len(fit)}; {describe_machine()}")
    print("command: " + " ".join(sys.argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
