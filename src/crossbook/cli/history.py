"""`crossbook history`: maintain the history database (a read model of the journal).

`crossbook history rebuild DIR [--history URL]` empties the history database of the node
whose data directory is DIR (by default the SQLite file in DIR; a `postgresql://` URL for
PostgreSQL), applies pending migrations and projects the whole journal into it again.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from crossbook.history import open_store
from crossbook.history.rebuild import rebuild
from crossbook.history.replay import journal_records


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "history", help="maintain the history database (orders, trades, ledger, candles)"
    )
    actions = parser.add_subparsers(dest="history_command", metavar="ACTION", required=True)
    rebuild_parser = actions.add_parser(
        "rebuild", help="rebuild the history database from the journal in DIR"
    )
    rebuild_parser.add_argument("dir", type=Path, help="the node's data directory")
    rebuild_parser.add_argument(
        "--history",
        default=None,
        help="postgresql://... URL or SQLite file (default: the SQLite file in DIR)",
    )
    rebuild_parser.set_defaults(func=run_rebuild)


def run_rebuild(args: argparse.Namespace) -> int:
    data_dir: Path = args.dir
    if not data_dir.is_dir():
        print(f"crossbook history rebuild: {data_dir} is not a directory")
        return 2
    target = args.history or data_dir
    started = time.perf_counter()
    events = asyncio.run(_rebuild(data_dir, target))
    elapsed = time.perf_counter() - started
    print(f"history rebuilt from {data_dir}: {events} events in {elapsed:.2f}s")
    return 0


async def _rebuild(data_dir: Path, target: str | Path) -> int:
    store = open_store(target)
    await store.open()
    try:
        return await rebuild(store, journal_records(data_dir))
    finally:
        await store.close()
