"""`infomax data info SPEC`: load a data set and print what is in it."""

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
    parser.set_defaults(func=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args: argparse.Namespace) -> int:
    import time

    from infomax.data import load
    from infomax.data.info import describe

    start = time.perf_counter()
    dataset = load(args.spec, download=args.download, progress=not args.no_progress, cache_dir=args.cache_dir)
    seconds = time.perf_counter() - start
    print(describe(dataset, seconds))
    return 0
