"""`infomax eval`, `infomax grid` and `infomax plot`: measure and look at learned features."""

from __future__ import annotations

import argparse
from pathlib import Path

from infomax.errors import InfomaxError
from infomax.extras import EVAL, PARQUET, require_all


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="score embeddings: kNN, probes, retrieval, prior check (and baselines)",
        description="Score frozen features: gallery = train split, queries = test/val split. Labels are "
        "used only for scoring. Writes eval.json, eval.md and prior.png.",
    )
    p.add_argument("--embeddings", required=True, metavar="EMB_DIR", help="folder written by `infomax embed`")
    p.add_argument("--out", metavar="DIR", help="where to write the report (default: the embeddings folder)")
    p.add_argument("--features", nargs="+", choices=("y", "fc", "conv"),
                   help="feature sets to probe (default: all that were embedded); kNN and retrieval use y")
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


def class_names(emb) -> list[str] | None:
    """Class name per label value, from the metadata (None when unlabelled)."""
    if not emb.labelled:
        return None
    if emb.info.get("class_names"):
        return [str(n) for n in emb.info["class_names"]]
    pairs = emb.metadata[["label", "label_name"]].drop_duplicates("label")
    names = [""] * (int(pairs["label"].max()) + 1)
    for label, name in zip(pairs["label"], pairs["label_name"]):
        names[int(label)] = str(name) if name else str(int(label))
    return names


def run_eval(args: argparse.Namespace) -> int:
    require_all(EVAL, "eval", "infomax eval")
    import numpy as np

    from infomax.embed.files import load_embeddings
    from infomax.eval import baselines, images, prior, report

    emb = load_embeddings(args.embeddings)
    out = Path(args.out or args.embeddings)
    result = {"embeddings": str(args.embeddings), "data": emb.info.get("data"),
              "checkpoint": emb.info.get("checkpoint"), "notes": []}
    stats = prior.prior_stats(emb.vectors)
    prior.plot_prior(emb.vectors, stats, out / "prior.png")
    result.update(prior=stats, prior_plot="prior.png")
    gallery, query = report.choose_splits(emb)
    reason = report.skip_reason(emb, gallery, query)
    if reason:
        result["notes"].append(reason)
        if args.baselines is not None:
            result["notes"].append("baselines were skipped for the same reason")
    else:
        labels, g_rows, q_rows = emb.labels(), emb.rows(gallery), emb.rows(query)
        num_classes = int(labels.max()) + 1
        result.update(gallery={"split": gallery, "size": len(g_rows)}, queries={"split": query, "size": len(q_rows)},
                      num_classes=num_classes, protocols=report.PROTOCOLS, results={})
        extra = {}
        if args.baselines is not None:  # built first: a missing data set or checkpoint fails fast
            which = args.baselines or list(baselines.BASELINES)
            dataset = images.load_dataset(args.data, emb)
            all_images = images.row_images(dataset, emb, np.arange(len(emb)))
            extra = baselines.baseline_features(
                which, all_images, g_rows, emb.vectors.shape[1], dataset.normalization,
                run_dir=args.checkpoint or emb.info.get("checkpoint"), seed=args.seed,
            )
        names = args.features or ["y"] + [n for n in ("fc", "conv") if n in emb.extra]
        sets = [(n, "learned", emb.features(n), n == "y") for n in names]
        sets += [(n.replace(" ", "_"), "baseline", f, True) for n, f in extra.items()]
        for key, kind, features, neighbours in sets:
            report.log(f"eval: {report.title(key, kind)} ({features.shape[1]} dims) ...")
            result["results"][key] = {"kind": kind, **report.evaluate_features(
                features, labels, g_rows, q_rows, num_classes, neighbours=neighbours,
                probe_epochs=args.probe_epochs, seed=args.seed,
            )}
        if any(not n for *_, n in sets):
            result["notes"].append("kNN and retrieval are scored on y (μ), the search features; fc and conv are probed only")
    json_path, md_path = report.write_report(result, out)
    print(report.markdown(result))
    report.log(f"eval: wrote {json_path}, {md_path} and {out / 'prior.png'}")
    return 0


def _query_rows_by_id(emb, ids: list[str]):
    import numpy as np

    row_of = {str(i): r for r, i in enumerate(emb.metadata["id"].tolist())}
    missing = [i for i in ids if i not in row_of]
    if missing:
        example = ", ".join(map(str, emb.metadata["id"].head(3)))
        raise InfomaxError(f"no image with id {', '.join(missing[:5])} in the embeddings (ids look like: {example})")
    return np.array([row_of[i] for i in ids], dtype=np.int64)


def run_grid(args: argparse.Namespace) -> int:
    require_all(PARQUET, "eval", "infomax grid")
    import numpy as np

    from infomax.embed.files import load_embeddings
    from infomax.eval import grid, images, report

    emb = load_embeddings(args.embeddings)
    default_gallery, default_query = report.choose_splits(emb)
    gallery_split = args.gallery_split or default_gallery
    gallery_rows = emb.rows(gallery_split)
    if len(gallery_rows) == 0:
        raise InfomaxError(f"the embeddings have no split '{gallery_split}' (they have {', '.join(emb.splits)})")
    if args.k < 1 or args.k >= len(gallery_rows):
        raise InfomaxError(f"--k must be between 1 and {len(gallery_rows) - 1}")
    dataset = images.load_dataset(args.data, emb)
    names = class_names(emb)
    if args.query_images:
        from infomax.embed.embedder import Embedder

        embedder = Embedder.from_checkpoint(args.checkpoint or emb.info.get("checkpoint"))
        query_vectors = embedder.embed_files(args.query_images)
        if query_vectors.shape[1] != emb.vectors.shape[1]:
            raise InfomaxError(f"the checkpoint makes {query_vectors.shape[1]}-dim features but the embeddings "
                               f"have {emb.vectors.shape[1]}; pass the --checkpoint the embeddings came from")
        query_images = np.stack([embedder.load_image(p) for p in args.query_images])  # as the encoder saw them
        query_rows = np.full(len(query_images), -1, dtype=np.int64)
        row_labels = [Path(p).name for p in args.query_images]
    else:
        if args.query_ids:
            query_rows = _query_rows_by_id(emb, args.query_ids)
        else:
            split = args.query_split or default_query or gallery_split
            candidates = emb.rows(split)
            if len(candidates) == 0:
                raise InfomaxError(f"the embeddings have no split '{split}' (they have {', '.join(emb.splits)})")
            query_rows = grid.select_queries(candidates, args.queries, seed=args.seed)
        query_vectors = np.asarray(emb.vectors[query_rows])
        query_images = images.row_images(dataset, emb, query_rows)
        meta = emb.metadata.iloc[query_rows]
        row_labels = [str(n) for n in meta["label_name"]] if names else [str(i) for i in meta["id"]]
    labels = emb.labels() if names else None
    blocks = []
    for metric in (("cosine", "l2") if args.metric == "both" else (args.metric,)):
        rows = grid.grid_neighbours(emb.vectors, gallery_rows, query_vectors, query_rows, args.k, metric)  # Q×k
        pictures = images.row_images(dataset, emb, rows.ravel()).reshape(*rows.shape, *dataset.image_shape)
        same = None
        if labels is not None and (query_rows >= 0).all():
            same = labels[rows] == labels[query_rows][:, None]
        title = f"{'cosine' if metric == 'cosine' else 'L2'}: {args.k} nearest in {gallery_split}"
        blocks.append(grid.Block(title, pictures, same))
    path = grid.save_png(grid.draw_grid(query_images, blocks, row_labels), args.out)
    print(f"grid: {len(query_images)} queries × {args.k} neighbours -> {path}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    require_all(EVAL, "eval", "infomax plot")
    import numpy as np

    from infomax.embed.files import load_embeddings
    from infomax.eval import images, plot

    emb = load_embeddings(args.embeddings)
    rows = emb.rows(args.split) if args.split else None
    if rows is not None and len(rows) == 0:
        raise InfomaxError(f"the embeddings have no split '{args.split}' (they have {', '.join(emb.splits)})")
    candidates = rows if rows is not None else np.arange(len(emb))
    rows = candidates[plot.subsample(len(candidates), args.points, args.seed)]
    points, method, note = plot.layout_2d(emb.vectors[rows], args.method, args.seed)
    names = class_names(emb)
    labels = emb.labels()[rows] if names else None
    thumbs = None
    if args.thumbnails > 0:
        dataset = images.load_dataset(args.data, emb)
        pick = plot.subsample(len(rows), args.thumbnails, args.seed + 1)
        thumbs = (pick, images.row_images(dataset, emb, rows[pick]))
    title = f"{method.upper() if method == 'umap' else 't-SNE'} of {len(rows)} embeddings from {args.embeddings}"
    path = plot.draw_map(points, args.out, labels, names, thumbs, title)
    if note:
        print(f"plot: note: {note}")
    print(f"plot: {len(rows)} points ({method}) -> {path}")
    return 0
