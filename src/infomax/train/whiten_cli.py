"""`infomax whiten`: fit the whitening of a checkpoint's feature (model/whitening.py) after the
fact, for runs trained without it (`--whiten 0`, or before it existed) and encoder-only folders."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("whiten", help="fit the whitening of a checkpoint's feature μ on plain train images",
                              description="Fits y = (μ − m)·C^−p (m, C: the mean and covariance of μ over plain "
                                          "train images) and writes the checkpoint again with it, so embed, search, serve "
                                          "and export give y. A run folder gets a new copy of its latest checkpoint "
                                          "(same step); an encoder-only folder is rewritten; --out writes an "
                                          "encoder-only copy instead.")
    p.add_argument("checkpoint", help="run folder, its latest step folder, an encoder-only folder, or pretrained:NAME "
                                      "(with --out)")
    p.add_argument("--out", help="write a whitened encoder-only folder here instead")
    p.add_argument("--data", help="data spec to take the train images from (default: the one it was trained on)")
    p.add_argument("--images", type=int, default=10240, help="plain train images to fit on (default 10240)")
    p.add_argument("--power", type=float, help="the power p (default: the run's run.whiten_power, its preset's "
                                               "where the run predates the setting; 0.5 is PCA whitening)")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=None,
                   help="fit (and embed) μ averaged over each image and its left-right mirror (default: the run's "
                        "run.mirror, its preset's where the run predates the setting)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from infomax.train.whiten import whiten_checkpoint

    done = whiten_checkpoint(args.checkpoint, out=args.out, data=args.data, images=args.images, power=args.power,
                             mirror=args.mirror, device=args.device)
    mirrored = ", each averaged with its mirror" if done["mirror"] else ""
    print(f"whiten: {done['images']} train images{mirrored}, power {done['power']:g}; μ's covariance: "
          f"{done['directions']} directions kept, the largest holding {done['largest']:.3g} of variance, "
          f"the mean {done['mean']:.3g} -> {done['path']}")
    return 0
