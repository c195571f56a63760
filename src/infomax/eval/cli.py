"""`infomax eval`, `infomax grid` and `infomax plot`: measure and look at learned features."""

from __future__ import annotations

import argparse



def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score embeddings: kNN, probes, retrieval, prior check (and baselines)",
        description="Score frozen features: gallery = train split, queries = test/val split. Labels are "
        "used only for scoring. Writes eval.json, eval.md and prior.png.",
    )
    p.add_argument("--embeddings", required=True, metavar="EMB_DIR", help="folder written by `infomax embed`")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default: the embeddings folder)")
    p.add_argument("--features", nargs="+", choices=("y", "mu", "fc", "conv"),
                   help="feature sets to probe (default: all that were embedded); kNN and retrieval use y and mu")
    p.add_argument("--baselines", nargs="*", choices=("pixels", "pca", "random"), metavar="NAME",
                   help="also score baselines on the same splits: pixels, pca, random (all when none named)")
    p.add_argument("--data", metavar="SPEC", help="data set for the baselines (default: the one in embed.json)")
    p.add_argument("--checkpoint", metavar="RUN_DIR", help="run for the random-encoder baseline (default: embed.json's)")
    p.add_argument("--probe-epochs", type=int, metavar="N", help="override the probes' fixed epoch budget")
    p.add_argument("--seed", type=int, default=0, help="seed of the probes and PCA (default 0)")
    p.set_defaults(func=run_eval)

    p = subparsers.add_parser(
        "grid",
        help="draw each query image with its nearest neighbours",
        description="Each row: a query, then its k nearest gallery images (green/red frame: same/other class). "
        "Queries come from the held-out split by default, drawn with a fixed seed; a query never finds itself.",
    )
    p.add_argument("--embeddings", required=True, metavar="EMB_DIR")
    p.add_argument("--data", metavar="SPEC", help="the embedded data set (default: the one in embed.json)")
    q = p.add_mutually_exclusive_group()
    q.add_argument("--queries", type=int, default=10, metavar="N", help="number of random queries (default 10)")
    q.add_argument("--query-ids", nargs="+", metavar="ID", help="queries by metadata id")
    q.add_argument("--query-images", nargs="+", metavar="FILE", help="query image files (encoded with --checkpoint)")
    p.add_argument("--checkpoint", metavar="RUN_DIR", help="encoder for --query-images (default: embed.json's)")
    p.add_argument("--metric", choices=("cosine", "l2", "both"), default="cosine")
    p.add_argument("--k", type=int, default=9, help="neighbours per row (default 9)")
    p.add_argument("--seed", type=int, default=0, help="seed of the query selection (default 0)")
    p.add_argument("--gallery-split", metavar="SPLIT", help="split searched (default: train)")
    p.add_argument("--query-split", metavar="SPLIT", help="split the queries come from (default: test/val)")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.set_defaults(func=run_grid)

    p = subparsers.add_parser("plot", help="draw a 2-D map of the embeddings (UMAP or t-SNE)")
    p.add_argument("--embeddings", required=True, metavar="EMB_DIR")
    p.add_argument("--out", required=True, metavar="FILE.png")
    p.add_argument("--method", choices=("auto", "umap", "tsne"), default="auto",
                   help="auto: UMAP when umap-learn is installed, else t-SNE")
    p.add_argument("--points", type=int, default=3000, help="random sample size, 0 for all (default 3000)")
    p.add_argument("--thumbnails", type=int, default=0, metavar="N", help="draw N sample images (needs the data)")
    p.add_argument("--data", metavar="SPEC", help="data set for thumbnails (default: the one in embed.json)")
    p.add_argument("--split", help="only rows of this split (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_plot)


def run_eval(args: argparse.Namespace) -> int:
    from infomax.eval.run import evaluate

    evaluate(args.embeddings, args.out, features=args.features, baselines_=args.baselines, data=args.data,
             checkpoint=args.checkpoint, probe_epochs=args.probe_epochs, seed=args.seed)
    return 0


def run_grid(args: argparse.Namespace) -> int:
    from infomax.eval.run import grid

    grid(args.embeddings, args.out, data=args.data, query_images=args.query_images, query_ids=args.query_ids,
         queries=args.queries, checkpoint=args.checkpoint, metric=args.metric, k=args.k, seed=args.seed,
         gallery_split=args.gallery_split, query_split=args.query_split)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from infomax.eval.run import embedding_map

    embedding_map(args.embeddings, args.out, method=args.method, points=args.points, thumbnails=args.thumbnails,
                  data=args.data, split=args.split, seed=args.seed)
    return 0
