"""`infomax data info SPEC`: describe a data set; `infomax data shard SPEC --out DIR`: write tar shards."""

from __future__ import annotations

import argparse

from infomax.data.spec import spec_help


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "data",
        help="inspect data sets",
        description="Inspect data sets.",
        epilog=spec_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION")
    info = actions.add_parser(
        "info",
        help="print splits, classes, image shape and pixel statistics of a data set",
        description="Load a data set (decoding it once; later runs read the cache) and describe it.",
        epilog=spec_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument("spec", metavar="SPEC", help="data spec, e.g. digits or folder:imgs.zip,size=64")
    info.add_argument("--download", action="store_true", help="download the official release when it is not on disk")
    info.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where downloads and decoded arrays go (default: $INFOMAX_HOME or ~/.cache/infomax)",
    )
    info.add_argument("--no-progress", action="store_true", help="no progress bars")
    info.set_defaults(func=run)
    _add_shard(actions)
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _add_shard(actions) -> None:
    shard = actions.add_parser(
        "shard",
        help="write a data set as WebDataset tar shards (read back with the spec webdataset:DIR)",
        description="Write every split of a data set (or --split) to DIR/SPLIT/shard-000000.tar ... with a "
        "shards.json manifest: per sample KEY.png (or .jpg), KEY.cls and KEY.json.",
        epilog=spec_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    shard.add_argument("spec", metavar="SPEC", help="data spec, e.g. folder:photos/ or cifar10:cifar-10-python.tar.gz")
    shard.add_argument("--out", required=True, metavar="DIR", help="folder for the shards (one subfolder per split)")
    shard.add_argument("--shard-size", type=int, default=10000, metavar="N", help="samples per tar (default 10000)")
    shard.add_argument("--size", type=int, metavar="S", help="resize images to S×S (shorter side, center crop)")
    shard.add_argument("--split", metavar="NAME", help="write only this split (default: all)")
    shard.add_argument("--format", choices=("png", "jpg", "npy"), default="png",
                       help="png (lossless, default), jpg (smaller) or npy (raw pixels: no decoding, the quickest to train from)")
    shard.add_argument("--overwrite", action="store_true", help="replace shards already in DIR")
    shard.add_argument("--no-progress", action="store_true", help="no progress bars")
    shard.set_defaults(func=run_shard)


def run_shard(args: argparse.Namespace) -> int:
    from infomax.data.shards import write_shards

    top = write_shards(args.spec, args.out, shard_size=args.shard_size, size=args.size, split=args.split,
                       image_format=args.format, overwrite=args.overwrite, progress=not args.no_progress)
    c, h, w = top["image_shape"]
    for name, split in top["splits"].items():
        print(f"{name}: {split['samples']:,} images ({c}×{h}×{w}) in {split['shards']} shards: {args.out}/{name}/")
    print(f"read them with the data spec webdataset:{args.out}/{next(iter(top['splits']))}")
    return 0


def run(args: argparse.Namespace) -> int:
    import time

    from infomax.data.spec import STREAM_KINDS, parse_spec

    if parse_spec(args.spec).kind in STREAM_KINDS:
        from infomax.data.info import describe_stream
        from infomax.data.stream import open_stream

        print(describe_stream(open_stream(args.spec)))
        return 0

    from infomax.data import load
    from infomax.data.info import describe

    start = time.perf_counter()
    dataset = load(args.spec, download=args.download, progress=not args.no_progress, cache_dir=args.cache_dir)
    seconds = time.perf_counter() - start
    print(describe(dataset, seconds))
    return 0
