"""eval, grid and plot as functions: measure and look at the features of an embeddings folder.
The `infomax eval`, `grid` and `plot` commands call these."""

from __future__ import annotations

from pathlib import Path

from infomax.errors import InfomaxError
from infomax.extras import EVAL, PARQUET, require_all


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


def evaluate(embeddings: str | Path, out: str | Path | None = None, *, features: list[str] | None = None,
             baselines_: list[str] | None = None, data: str | None = None, checkpoint: str | None = None,
             probe_epochs: int | None = None, seed: int = 0) -> dict:
    """Every protocol on an embeddings folder: writes eval.json, eval.md and prior.png into `out`
    (default: the folder itself) and returns the report. baselines_: None for none, [] for all."""
    require_all(EVAL, "eval", "infomax eval")
    import numpy as np

    from infomax.embed.files import load_embeddings
    from infomax.eval import baselines, images, prior, report

    emb = load_embeddings(embeddings)
    out = Path(out or embeddings)
    result = {"embeddings": str(embeddings), "data": emb.info.get("data"),
              "checkpoint": emb.info.get("checkpoint"), "notes": []}
    codes = emb.vectors  # the prior check reads μ
    if emb.info.get("mirror"):
        result["notes"].append("every feature is averaged over each image and its left-right mirror (model/mirror.py)")
    if emb.info.get("whitening"):
        result["notes"].append(f"y is μ whitened after training, y = (μ − m)·C^−{emb.info['whitening']:g} "
                               "(model/whitening.py); mu is μ itself")
        codes = emb.extra.get("mu")
        if codes is None:
            result["notes"].append("no prior check: it reads μ, and y is whitened; embed with --features y,mu")
    if codes is not None:
        stats = prior.prior_stats(codes)
        prior.plot_prior(codes, stats, out / "prior.png")
        result.update(prior=stats, prior_plot="prior.png")
    gallery, query = report.choose_splits(emb)
    reason = report.skip_reason(emb, gallery, query)
    if reason:
        result["notes"].append(reason)
        if baselines_ is not None:
            result["notes"].append("baselines were skipped for the same reason")
    else:
        labels, g_rows, q_rows = emb.labels(), emb.rows(gallery), emb.rows(query)
        num_classes = int(labels.max()) + 1
        result.update(gallery={"split": gallery, "size": len(g_rows)}, queries={"split": query, "size": len(q_rows)},
                      num_classes=num_classes, protocols=report.PROTOCOLS, results={})
        extra = {}
        if baselines_ is not None:  # built first: a missing data set or checkpoint fails fast
            which = baselines_ or list(baselines.BASELINES)
            dataset = images.load_dataset(data, emb)
            all_images = images.row_images(dataset, emb, np.arange(len(emb)))
            extra = baselines.baseline_features(
                which, all_images, g_rows, emb.vectors.shape[1], dataset.normalization,
                run_dir=checkpoint or emb.info.get("checkpoint"), seed=seed,
            )
        names = features or ["y"] + [n for n in ("mu", "fc", "conv") if n in emb.extra]
        sets = [(n, "learned", emb.features(n), n in ("y", "mu")) for n in names]
        sets += [(n.replace(" ", "_"), "baseline", f, True) for n, f in extra.items()]
        for key, kind, features, neighbours in sets:
            report.log(f"eval: {report.title(key, kind)} ({features.shape[1]} dims) ...")
            result["results"][key] = {"kind": kind, **report.evaluate_features(
                features, labels, g_rows, q_rows, num_classes, neighbours=neighbours,
                probe_epochs=probe_epochs, seed=seed,
            )}
        if any(not n for *_, n in sets):
            result["notes"].append("kNN and retrieval are scored on y, the search features (and on mu); fc and conv "
                                   "are probed only")
    if report.margins(result.get("results", {})):
        result["margins"] = report.margins(result["results"])  # learned − best baseline, per protocol
    json_path, md_path = report.write_report(result, out)
    print(report.markdown(result))
    report.log(f"eval: wrote {json_path}, {md_path} and {out / 'prior.png'}")
    return result


def _query_rows_by_id(emb, ids: list[str]):
    import numpy as np

    row_of = {str(i): r for r, i in enumerate(emb.metadata["id"].tolist())}
    missing = [i for i in ids if i not in row_of]
    if missing:
        example = ", ".join(map(str, emb.metadata["id"].head(3)))
        raise InfomaxError(f"no image with id {', '.join(missing[:5])} in the embeddings (ids look like: {example})")
    return np.array([row_of[i] for i in ids], dtype=np.int64)


def grid(embeddings: str | Path, out: str | Path, *, data: str | None = None, query_images: list[str] | None = None,
         query_ids: list[str] | None = None, queries: int = 10, checkpoint: str | None = None, metric: str = "cosine",
         k: int = 9, seed: int = 0, gallery_split: str | None = None, query_split: str | None = None) -> Path:
    """Queries and their k nearest gallery images as one PNG at `out`; returns its path."""
    require_all(PARQUET, "eval", "infomax grid")
    import numpy as np

    from infomax.data.pictures import Pictures
    from infomax.embed.files import load_embeddings
    from infomax.eval import grid, images, report

    emb = load_embeddings(embeddings)
    default_gallery, default_query = report.choose_splits(emb)
    gallery_split = gallery_split or default_gallery
    gallery_rows = emb.rows(gallery_split)
    if len(gallery_rows) == 0:
        raise InfomaxError(f"the embeddings have no split '{gallery_split}' (they have {', '.join(emb.splits)})")
    if k < 1 or k >= len(gallery_rows):
        raise InfomaxError(f"--k must be between 1 and {len(gallery_rows) - 1}")
    dataset = images.load_dataset(data, emb)
    pictures = Pictures.for_dataset(dataset)  # source files at up to 256 px where the data has them
    box = grid.PICTURE_PIXELS if pictures.from_sources else grid.TARGET_PIXELS
    names = class_names(emb)
    if query_images:
        from infomax.embed.embedder import Embedder

        embedder = Embedder.from_checkpoint(checkpoint or emb.info.get("checkpoint"))
        query_vectors = embedder.embed_files(query_images)
        if query_vectors.shape[1] != emb.vectors.shape[1]:
            raise InfomaxError(f"the checkpoint makes {query_vectors.shape[1]}-dim features but the embeddings "
                               f"have {emb.vectors.shape[1]}; pass the --checkpoint the embeddings came from")
        row_labels = [Path(p).name for p in query_images]
        query_pictures = [_file_picture(p, box) for p in query_images]
        query_rows = np.full(len(query_images), -1, dtype=np.int64)
    else:
        if query_ids:
            query_rows = _query_rows_by_id(emb, query_ids)
        else:
            split = query_split or default_query or gallery_split
            candidates = emb.rows(split)
            if len(candidates) == 0:
                raise InfomaxError(f"the embeddings have no split '{split}' (they have {', '.join(emb.splits)})")
            query_rows = grid.select_queries(candidates, queries, seed=seed)
        query_vectors = np.asarray(emb.vectors[query_rows])
        query_pictures = images.row_pictures(dataset, emb, query_rows, box, pictures)
        meta = emb.metadata.iloc[query_rows]
        row_labels = [str(n) for n in meta["label_name"]] if names else [str(i) for i in meta["id"]]
    labels = emb.labels() if names else None
    blocks = []
    for metric in (("cosine", "l2") if metric == "both" else (metric,)):
        rows = grid.grid_neighbours(emb.vectors, gallery_rows, query_vectors, query_rows, k, metric)  # Q×k
        flat = images.row_pictures(dataset, emb, rows.ravel(), box, pictures)
        tiles = [flat[i * k : (i + 1) * k] for i in range(len(rows))]
        same = None
        if labels is not None and (query_rows >= 0).all():
            same = labels[rows] == labels[query_rows][:, None]
        title = f"{'cosine' if metric == 'cosine' else 'L2'}: {k} nearest in {gallery_split}"
        blocks.append(grid.Block(title, tiles, same))
    path = grid.save_png(grid.draw_grid(query_pictures, blocks, row_labels), out)
    print(f"grid: {len(query_pictures)} queries × {k} neighbours -> {path}")
    return path


def _file_picture(path: str, box: int):
    """uint8 H×W×3 of an image file given on the command line, fitted into box×box."""
    import numpy as np

    from infomax.data.decode import read_file
    from infomax.data.pictures import source_picture

    try:
        return np.asarray(source_picture(read_file(path), box))
    except OSError as exc:
        raise InfomaxError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except InfomaxError as exc:
        raise InfomaxError(f"{path}: {exc}") from None


def embedding_map(embeddings: str | Path, out: str | Path, *, method: str = "auto", points: int = 3000,
                  thumbnails: int = 0, data: str | None = None, split: str | None = None, seed: int = 0) -> Path:
    """A 2-D map (UMAP or t-SNE) of the embeddings as a PNG at `out`; returns its path."""
    require_all(EVAL, "eval", "infomax plot")
    import numpy as np

    from infomax.embed.files import load_embeddings
    from infomax.eval import images, plot

    emb = load_embeddings(embeddings)
    rows = emb.rows(split) if split else None
    if rows is not None and len(rows) == 0:
        raise InfomaxError(f"the embeddings have no split '{split}' (they have {', '.join(emb.splits)})")
    candidates = rows if rows is not None else np.arange(len(emb))
    rows = candidates[plot.subsample(len(candidates), points, seed)]
    points, method, note = plot.layout_2d(emb.vectors[rows], method, seed)
    names = class_names(emb)
    labels = emb.labels()[rows] if names else None
    thumbs = None
    if thumbnails > 0:
        dataset = images.load_dataset(data, emb)
        pick = plot.subsample(len(rows), thumbnails, seed + 1)
        thumbs = (pick, images.row_pictures(dataset, emb, rows[pick], plot.THUMB_PIXELS))
    title = f"{method.upper() if method == 'umap' else 't-SNE'} of {len(rows)} embeddings from {embeddings}"
    path = plot.draw_map(points, out, labels, names, thumbs, title)
    if note:
        print(f"plot: note: {note}")
    print(f"plot: {len(rows)} points ({method}) -> {path}")
    return path
