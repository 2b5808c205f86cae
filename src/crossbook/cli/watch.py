"""`crossbook watch book|trades|ticker SYMBOL`: live market data over the WebSocket channels.

`book` keeps a local book in sync (snapshot plus diffs, resync on a gap) and redraws the top
`--depth` levels; `trades` prints each trade; `ticker` prints the 24 h ticker on each change.
`--count N` stops after N updates; `--json` prints one JSON object per update. The stream
reconnects by itself; Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING, Any

import msgspec

from crossbook.cli.common import Connection, add_connection_args, connection, guarded
from crossbook.protocol import ws

if TYPE_CHECKING:
    from crossbook.client import LiveBook


def register(sub: Any) -> None:
    watch: argparse.ArgumentParser = sub.add_parser(
        "watch", help="stream the book, trades or ticker of a symbol",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kinds = watch.add_subparsers(dest="kind", metavar="STREAM", required=True)
    for name, help in (("book", "the order book, kept in sync"), ("trades", "public trades"),
                       ("ticker", "the 24 h ticker")):
        p: argparse.ArgumentParser = kinds.add_parser(name, help=help, description=help)
        p.add_argument("symbol")
        p.add_argument("--count", type=int, default=0, help="stop after N updates")
        if name == "book":
            p.add_argument("--depth", type=int, default=10, help="levels per side to show")
        add_connection_args(p)
        p.set_defaults(func=guarded(run))


def run(args: argparse.Namespace) -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_watch(args, connection(args)))
    return 0


def _book_lines(book: LiveBook, depth: int) -> list[str]:
    sync = book.sync
    asks = list(reversed(sync.asks(depth)))
    bids = sync.bids(depth)
    lines = [f"{book.symbol}  update {sync.last_update_id}  resyncs {book.resyncs}"]
    lines += [f"  ask {price:>16} {qty:>16}" for price, qty in asks]
    lines.append("  " + "-" * 38)
    lines += [f"  bid {price:>16} {qty:>16}" for price, qty in bids]
    return lines


async def _watch(args: argparse.Namespace, conn: Connection) -> None:
    from crossbook.client import AsyncClient, LiveBook, Reconnected, Stream  # noqa: PLC0415

    out = sys.stdout
    seen = 0
    async with AsyncClient(conn.url) as client, Stream(conn.ws_url) as stream:
        book = LiveBook(stream, client, args.symbol)
        if args.kind == "book":
            await book.start()
        elif args.kind == "trades":
            await stream.subscribe("trades", args.symbol)
        else:
            await stream.subscribe("ticker", args.symbol)
        async for message in stream:
            if args.kind == "book":
                if book.feed(message):
                    await book.resync()
                if isinstance(message, Reconnected) or not book.sync.synced:
                    continue
                if args.json:
                    snapshot = {"symbol": args.symbol, "last_update_id":
                                book.sync.last_update_id,
                                "bids": [[str(p), str(q)] for p, q in book.sync.bids(args.depth)],
                                "asks": [[str(p), str(q)] for p, q in book.sync.asks(args.depth)]}
                    out.write(msgspec.json.encode(snapshot).decode() + "\n")
                else:
                    out.write("\x1b[2J\x1b[H" if out.isatty() else "\n")
                    out.write("\n".join(_book_lines(book, args.depth)) + "\n")
            elif isinstance(message, ws.TradeMessage | ws.TickerMessage):
                if args.json:
                    out.write(msgspec.json.encode(message).decode() + "\n")
                elif isinstance(message, ws.TradeMessage):
                    out.write(f"{message.symbol} #{message.trade_id} {message.taker_side:<4} "
                              f"{message.quantity} @ {message.price}\n")
                else:
                    out.write(f"{message.symbol} last {message.last} high {message.high} "
                              f"low {message.low} volume {message.volume} "
                              f"trades {message.trade_count}\n")
            else:
                continue
            out.flush()
            seen += 1
            if args.count and seen >= args.count:
                return
