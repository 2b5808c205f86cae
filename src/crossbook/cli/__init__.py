"""The `crossbook` command line: one entry point, one module per group of subcommands.

Each group module exposes `register(subparsers)`; it adds its parsers and sets `func` on them,
a callable taking the parsed namespace and returning the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from crossbook import ENGINE_BUILD, __version__

# Subcommand groups, imported lazily so that `crossbook --help` stays fast.
GROUPS: tuple[str, ...] = (
    "crossbook.cli.admin",
    "crossbook.cli.bench",
    "crossbook.cli.demo",
    "crossbook.cli.history",
    "crossbook.cli.journal",
    "crossbook.cli.serve",
    "crossbook.cli.trade",
    "crossbook.cli.tui",
    "crossbook.cli.watch",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossbook", description="crossbook: an exchange in a box."
    )
    parser.add_argument(
        "--version", action="version", version=f"crossbook {__version__} (engine: {ENGINE_BUILD})"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    code: int = func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
