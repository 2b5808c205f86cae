"""`crossbook demo`: start crossbook with embedded defaults and show it working."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "demo", help="start a node with demo instruments, funded accounts and trading bots"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print("crossbook demo: the engine is being built; see README.md")
    return 0
