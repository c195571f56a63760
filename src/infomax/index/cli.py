"""`infomax index` and `infomax search`: build a gallery index, then query it."""

from __future__ import annotations

import argparse
import json
import sys
from infomax.atomic import atomic_write
from infomax.checkpoint import checkpoint_ref
from infomax.errors import InfomaxError
from infomax.extras import INDEX, require_all


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "index",
        help="build a faiss index over embeddings for image search",
        description="Index L2-normalized embeddings (cosine similarity). auto: exact (flat) up to "
        "100,000 vectors, HNSW up to 4,000,000, IVF-PQ on disk above (or when HNSW would exceed "
        "--max-memory); name --kind to choose.",
    )
    p.add_argument("--embeddings", required=True, metavar="EMB_DIR", help="folder written by `infomax embed`")
    p.add_argument("--out", required=True, metavar="INDEX_DIR")
    p.add_argument("--split", default=None, help="split to index, or 'all' (default: train)")
    p.add_argument("--kind", choices=("auto", "flat", "hnsw", "ivf", "ivfpq"), default="auto")
    p.add_argument("--max-memory", metavar="SIZE", help="memory the build may use, e.g. 4G: auto picks "
                   "ivfpq when an in-memory index would need more")
    p.add_argument("--threads", type=int, default=None, help="build threads (default: all cores)")
    p.add_argument("--shards", type=int, default=1, metavar="K", help="split the gallery into K indexes by row "
                   "range, built one after another and searched together (default 1)")
    p.set_defaults(func=run_index)

    p = subparsers.add_parser(
        "search",
        help="find the gallery images nearest to image files or to gallery rows",
        description="Encode IMAGE files with the checkpoint and print the k nearest gallery ids with "
        "cosine scores; or query gallery rows with --row (no checkpoint needed, the row itself is left out).",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE")
    p.add_argument("--index", required=True, metavar="INDEX_DIR")
    p.add_argument("--checkpoint", metavar="RUN_DIR", help="run folder or pretrained:NAME that encodes IMAGE files (default: the one the index records)")
    p.add_argument("--row", type=int, action="append", metavar="N", help="query by gallery position (repeatable)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write JSON (to FILE, or stdout)")
    p.add_argument("--embeddings", metavar="EMB_DIR", help="check that the index was built from these embeddings")
    p.set_defaults(func=run_search)


def run_index(args: argparse.Namespace) -> int:
    require_all(INDEX, "index", "infomax index")
    from infomax.embed.ondisk import EmbeddingsOnDisk
    from infomax.index.store import build_gallery

    emb = EmbeddingsOnDisk(args.embeddings)  # the metadata is read whole only for an in-memory index
    split = args.split or ("train" if "train" in emb.splits else emb.splits[0])
    options = dict(kind=args.kind, threads=args.threads, emb=emb,
                   max_memory=parse_size(args.max_memory) if args.max_memory else None)
    if args.shards != 1:
        from infomax.index.sharded import build_sharded

        index = build_sharded(args.embeddings, args.out, args.shards, split=split, **options)
    else:
        index = build_gallery(args.embeddings, args.out, split=split, **options)
    settings = ", ".join(f"{k}={v}" for k, v in index.params.items())
    print(f"index: {len(index)} vectors ({split}, {index.dim} dims), {index.kind}"
          f"{f' ({settings})' if settings else ''}, built in {index.info['build_seconds']} s -> {args.out}")
    return 0


def parse_size(text: str) -> int:
    """'4G', '512M', '1.5G' or a byte count -> bytes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    t = text.strip().upper().removesuffix("B")
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except ValueError:
        raise InfomaxError(f"--max-memory '{text}' is not a size; write it like 4G or 512M") from None


def run_search(args: argparse.Namespace) -> int:
    require_all(INDEX, "index", "infomax search")
    from infomax.index import search
    from infomax.index.sharded import open_index

    if not args.images and not args.row:
        raise InfomaxError("nothing to search: give IMAGE files or --row N")
    if args.k < 1:
        raise InfomaxError(f"--k must be at least 1, got {args.k}")
    index = open_index(args.index)
    k = min(args.k, len(index))  # before anything is sized by k: --k 10**9 allocates nothing more
    if k < args.k:
        print(f"search: note: --k {args.k} is more than the {len(index):,} gallery images; showing all of them",
              file=sys.stderr)
    if args.embeddings:
        from infomax.embed.ondisk import EmbeddingsOnDisk

        index.check_embeddings(EmbeddingsOnDisk(args.embeddings))
    found = []
    if args.row:
        scores, pos = search.search_rows(index, args.row, k)
        found += search.results(index, [f"row {r} ({index.ids[r]})" for r in args.row], scores, pos)
    if args.images:
        recorded = index.info.get("checkpoint")
        checkpoint = args.checkpoint or recorded
        if not checkpoint:
            raise InfomaxError("the index records no checkpoint; pass --checkpoint RUN_DIR to encode the images")
        if args.checkpoint and recorded and checkpoint_ref(args.checkpoint) != checkpoint_ref(recorded):
            print(f"search: note: the index holds features of {recorded}; images encoded with another "
                  "checkpoint only match if it is the same model", file=sys.stderr)
        vectors = search.encode_files(args.images, checkpoint, index.dim)
        scores, pos = index.search(vectors, k)
        found += search.results(index, list(args.images), scores, pos)
    if args.json:
        text = json.dumps({"index": str(args.index), "k": k, "results": found}, indent=2)
        if args.json == "-":
            print(text)
        else:
            atomic_write(args.json, text + "\n")
            print(f"search: wrote {args.json}")
    else:
        print(search.format_text(found))
    return 0
