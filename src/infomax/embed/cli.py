"""`infomax embed`: every image of every split through a trained encoder, into an embeddings folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("embed", help="embed a data set with a trained checkpoint",
                              description="Writes embeddings.npy (μ), metadata.parquet and embed.json; "
                                          "rows follow the data order, train split first.")
    p.add_argument("--checkpoint", required=True, help="run folder (its latest checkpoint) or a step folder")
    p.add_argument("--data", help="data spec (default: the one the checkpoint was trained on)")
    p.add_argument("--out", required=True, help="embeddings folder to write")
    p.add_argument("--features", default="y", help="comma list of y (μ), fc (pooled pre-head), conv (flattened local map)")
    p.add_argument("--batch-size", type=int, help="images per forward pass (default: 64 on CPU, 512 on a GPU)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from infomax.data import load
    from infomax.embed.embedder import Embedder
    from infomax.embed.run import embed_dataset
    from infomax.embed.files import save_embeddings
    from infomax.extras import PARQUET, require_all

    require_all(PARQUET, "eval", "infomax embed (it writes metadata.parquet)")  # before the slow part
    embedder = Embedder.from_checkpoint(args.checkpoint, device=args.device, precision=args.precision)
    spec = args.data or embedder.config["data"]["spec"]
    dataset = load(spec)
    features = tuple(f.strip() for f in args.features.split(",") if f.strip())
    if "y" not in features:
        features = ("y",) + features
    t0 = time.perf_counter()
    emb = embed_dataset(embedder, dataset, spec=spec, checkpoint=str(Path(args.checkpoint).resolve()), features=features,
                        batch_size=args.batch_size, progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    emb.info["seconds"] = round(seconds, 3)  # embedding only: loading the data and the checkpoint excluded
    out = save_embeddings(args.out, emb)
    print(f"embedded {len(emb)} images ({', '.join(emb.splits)}) in {seconds:.1f} s "
          f"({len(emb) / max(seconds, 1e-9):.0f} images/s) -> {out}")
    return 0
