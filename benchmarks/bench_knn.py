"""Time the evaluation protocols on CIFAR-10-sized features: 50,000 gallery × 10,000 queries.

Features: trained embeddings (--embeddings EMB_DIR) or PCA to 256 dims of the real pixels of a data
set (--data SPEC, default the CIFAR-10 zip beside the repository). Reported: the neighbour search
(k = 200, cosine), the kNN votes and retrieval scores computed from it, and the two probes.

    .venv/bin/python benchmarks/bench_knn.py
    .venv/bin/python benchmarks/bench_knn.py --embeddings runs/emb --no-probes
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import DEFAULT_DATA, machine  # noqa: E402


def features(args) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """(gallery N×D, gallery labels, queries Q×D, query labels, description)."""
    if args.embeddings:
        from infomax.embed.files import load_embeddings
        from infomax.eval.report import choose_splits

        emb = load_embeddings(args.embeddings)
        gallery, query = choose_splits(emb)
        labels = emb.labels()
        g, q = emb.rows(gallery), emb.rows(query)
        return emb.vectors[g], labels[g], emb.vectors[q], labels[q], f"embeddings {args.embeddings}"
    from sklearn.decomposition import PCA

    from infomax.data import load
    from infomax.eval.baselines import pixel_features

    data = load(args.data, progress=False)
    train, test = data.split(data.train_split), data.split(data.heldout_split)
    x, t = pixel_features(train.images, data.normalization), pixel_features(test.images, data.normalization)
    pca = PCA(n_components=args.dim, svd_solver="randomized", random_state=0).fit(x)
    return (pca.transform(x).astype(np.float32), train.labels, pca.transform(t).astype(np.float32), test.labels,
            f"PCA-{args.dim} of the pixels of {args.data}")


def timed(label: str, fn):
    start = time.perf_counter()
    out = fn()
    print(f"{label}: {time.perf_counter() - start:.2f} s", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--embeddings")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--no-probes", action="store_true")
    args = p.parse_args(argv)

    from infomax.eval.knn import knn_accuracies, topk_neighbours
    from infomax.eval.probe import probe_accuracy
    from infomax.eval.retrieval import retrieval_metrics

    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {machine()}")
    g, gl, q, ql, what = features(args)
    classes = int(max(gl.max(), ql.max())) + 1
    print(f"features: {what}; gallery {g.shape[0]:,} × {g.shape[1]}, queries {q.shape[0]:,}")
    scores, pos = timed("neighbour search (k = 200, cosine, torch)", lambda: topk_neighbours(q, g, 200))
    neighbour_labels = gl[pos]
    acc = timed("kNN votes (weighted k=200 T=0.1; majority k=1,10,20)",
                lambda: knn_accuracies(scores, neighbour_labels, ql, classes))
    ret = timed("precision@10, mAP@100", lambda: retrieval_metrics(neighbour_labels, ql, gl))
    results = {**acc, **ret}
    if not args.no_probes:
        for kind in ("linear", "mlp"):
            results[f"{kind}_probe"] = timed(f"{kind} probe", lambda: probe_accuracy(kind, g, gl, q, ql, classes))
    print("results: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in results.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
