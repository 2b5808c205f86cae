"""`crossbook tui [SYMBOL]`: the terminal trading screen (`crossbook.tui`), through the SDK.

Connection flags as in `crossbook.cli.common` (a trade key to trade; without one the screen
shows market data only). Textual is imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from crossbook.cli.common import add_connection_args, connection


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "tui", help="terminal trading screen: book, trades, chart, orders, balances",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("symbol", nargs="?", help="symbol to open (default: the first one)")
    add_connection_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from crossbook.tui.app import TradingApp  # noqa: PLC0415 (Textual loads only here)

    conn = connection(args)
    app = TradingApp(conn.url, conn.ws_url, api_key=conn.api_key, secret=conn.secret,
                     symbol=args.symbol)
    app.run()
    return 0
