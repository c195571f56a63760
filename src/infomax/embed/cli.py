"""`infomax embed`: every image of every split through a trained encoder, into an embeddings folder."""

from __future__ import annotations

import argparse

from infomax.embed.files import PART_SIZE


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("embed", help="embed a data set with a trained checkpoint",
                              description="Writes embeddings/part-NNNNN.npy (μ), metadata/part-NNNNN.parquet and "
                                          "embed.json; rows follow the data order, train split first. Run the "
                                          "same command again to resume an unfinished embed; under torchrun each "
                                          "process embeds its own parts.")
    p.add_argument("--checkpoint", required=True, help="run folder (its latest checkpoint), a step folder, or pretrained:NAME "
                   "(an encoder shipped with infomax: pretrained:cifar10, pretrained:tiny-imagenet)")
    p.add_argument("--data", help="data spec (default: the one the checkpoint was trained on)")
    p.add_argument("--out", required=True, help="embeddings folder to write")
    p.add_argument("--features", default="y", help="comma list of y (μ, whitened where the run fitted a "
                   "whitening), mu (μ as the encoder gives it), fc (pooled pre-head), conv (flattened local map); "
                   "each averaged over the image and its mirror where the run says so (run.mirror)")
    p.add_argument("--batch-size", type=int, help="images per forward pass (default: 64 on CPU, 512 on a GPU)")
    p.add_argument("--part-size", type=int, default=PART_SIZE, help=f"rows per part file (default {PART_SIZE:,})")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"], help="how the vectors are stored")
    p.add_argument("--replace", action="store_true", help="replace embeddings of other settings already in --out")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from infomax.embed.run import embed_to_folder

    features = tuple(f.strip() for f in args.features.split(",") if f.strip())
    embed_to_folder(args.checkpoint, args.out, data=args.data, features=features, device=args.device,
                    precision=args.precision, batch_size=args.batch_size, progress=not args.no_progress,
                    part_size=args.part_size, dtype=args.dtype, replace=args.replace)
    return 0
