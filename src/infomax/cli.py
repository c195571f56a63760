"""The `infomax` command line: one sub-command per stage of the pipeline.

Each stage module exposes `add_parser(subparsers)`, which registers its sub-command and
sets `func` to a `run(args) -> int` function. Heavy imports (torch, faiss, ...) happen
inside `run`, so `infomax --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from infomax import __version__
from infomax.errors import InfomaxError

# Sub-command modules in the order data flows through the pipeline.
COMMAND_MODULES = [
    "infomax.data.cli",
    "infomax.train.cli",
    "infomax.train.whiten_cli",
    "infomax.embed.cli",
    "infomax.export_cli",
    "infomax.eval.cli",
    "infomax.index.cli",
    "infomax.serve.cli",
    "infomax.study.cli",
    "infomax.demo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infomax",
        description="Learn image features without labels (Deep InfoMax with a KL prior) and search images with them.",
    )
    parser.add_argument("--version", action="version", version=f"infomax {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except InfomaxError as exc:
        print(f"infomax {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"infomax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
