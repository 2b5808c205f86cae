"""`crossbook trade ...`: order entry and the account, through the SDK (a trade key).

    crossbook trade place BTC-USDT buy 0.01 --price 60000 [--type limit] [--tif IOC]
        [--post-only] [--stop-price P] [--quote-quantity Q] [--iceberg Q] [--cid ID]
    crossbook trade amend ORDER_ID [--price P] [--quantity Q]      (or --cid ID)
    crossbook trade cancel ORDER_ID | cancel --cid ID | cancel-all SYMBOL
    crossbook trade orders [SYMBOL]           open orders
    crossbook trade history [SYMBOL]          recent orders, newest first
    crossbook trade balances | fills [SYMBOL] | account

Connection flags and `--json` as in `crossbook.cli.common`.
"""

from __future__ import annotations

import argparse
from typing import Any

from crossbook.cli.common import add_connection_args, connection, emit, guarded
from crossbook.protocol import native as wire

ORDER_COLUMNS = ("order_id", "client_order_id", "symbol", "side", "type", "status", "price",
                 "quantity", "filled_quantity", "time_in_force")
FILL_COLUMNS = ("trade_id", "symbol", "order_id", "side", "price", "quantity", "fee",
                "fee_asset", "liquidity")


def register(sub: Any) -> None:
    trade: argparse.ArgumentParser = sub.add_parser(
        "trade", help="place, amend and cancel orders; balances, orders and fills",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = trade.add_subparsers(dest="verb", metavar="ACTION", required=True)

    def command(name: str, help: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = verbs.add_parser(name, help=help, description=help)
        add_connection_args(parser)
        parser.set_defaults(func=guarded(func))
        return parser

    p = command("place", "place an order", _place)
    p.add_argument("symbol")
    p.add_argument("side", choices=("buy", "sell"))
    p.add_argument("quantity", nargs="?", help="base quantity (omit with --quote-quantity)")
    p.add_argument("--price")
    p.add_argument("--type", default=None, choices=(
        "limit", "market", "stop_loss", "stop_limit", "take_profit", "take_profit_limit"),
        help="default: limit with --price, else market")
    p.add_argument("--tif", default="GTC", choices=("GTC", "IOC", "FOK", "GTD"))
    p.add_argument("--expire-time", type=int, help="GTD: milliseconds since the epoch")
    p.add_argument("--stop-price")
    p.add_argument("--quote-quantity", help="market buy: quote amount to spend")
    p.add_argument("--iceberg", help="visible quantity of an iceberg order")
    p.add_argument("--post-only", action="store_true")
    p.add_argument("--stp", default="none",
                   choices=("none", "expire_taker", "expire_maker", "expire_both", "decrement"))
    p.add_argument("--cid", help="client order id (default: generated)")

    p = command("amend", "amend an order's price and/or quantity", _amend)
    p.add_argument("order_id", type=int, nargs="?")
    p.add_argument("--cid", help="select the order by client order id")
    p.add_argument("--price")
    p.add_argument("--quantity", help="new total quantity, filled part included")

    p = command("cancel", "cancel an order", _cancel)
    p.add_argument("order_id", type=int, nargs="?")
    p.add_argument("--cid", help="select the order by client order id")

    p = command("cancel-all", "cancel every open order on a symbol", _cancel_all)
    p.add_argument("symbol")

    p = command("get", "show one order", _get)
    p.add_argument("order_id", type=int, nargs="?")
    p.add_argument("--cid", help="select the order by client order id")

    p = command("orders", "open orders", _orders)
    p.add_argument("symbol", nargs="?")
    p = command("history", "recent orders, open and closed, newest first", _history)
    p.add_argument("symbol", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    command("balances", "balances, free and locked", _balances)
    p = command("fills", "recent fills, newest first", _fills)
    p.add_argument("symbol", nargs="?")
    p.add_argument("--limit", type=int, default=50)
    command("account", "the account: fees, permissions", _account)


def _which(args: argparse.Namespace) -> tuple[int | None, str | None]:
    if args.order_id is None and not args.cid:
        raise SystemExit("crossbook: give ORDER_ID or --cid")
    return args.order_id, args.cid


def _place(args: argparse.Namespace) -> int:
    order_type: wire.TypeName = args.type or ("limit" if args.price else "market")
    with connection(args).client() as c:
        order = c.place_order(
            args.symbol, args.side, order_type, args.quantity, args.price,
            quote_quantity=args.quote_quantity, stop_price=args.stop_price,
            time_in_force=args.tif, expire_time=args.expire_time, post_only=args.post_only,
            iceberg_quantity=args.iceberg, stp=args.stp, client_order_id=args.cid,
        )
    emit(args, order, ORDER_COLUMNS)
    if not args.json and order.fills:
        print()
        emit(args, order.fills, FILL_COLUMNS)
    return 0


def _amend(args: argparse.Namespace) -> int:
    order_id, cid = _which(args)
    with connection(args).client() as c:
        emit(args, c.amend_order(order_id, client_order_id=cid, quantity=args.quantity,
                                 price=args.price), ORDER_COLUMNS)
    return 0


def _cancel(args: argparse.Namespace) -> int:
    order_id, cid = _which(args)
    with connection(args).client() as c:
        emit(args, c.cancel_order(order_id, client_order_id=cid), ORDER_COLUMNS)
    return 0


def _get(args: argparse.Namespace) -> int:
    order_id, cid = _which(args)
    with connection(args).client() as c:
        emit(args, c.get_order(order_id, client_order_id=cid), ORDER_COLUMNS)
    return 0


def _cancel_all(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        done = c.cancel_all(args.symbol)
    if args.json:
        emit(args, done)
    else:
        print(f"{done.symbol}: canceled {len(done.canceled)} order(s) "
              f"{' '.join(map(str, done.canceled))}".rstrip())
    return 0


def _orders(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.open_orders(args.symbol), ORDER_COLUMNS)
    return 0


def _history(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.order_history(args.symbol, args.limit), ORDER_COLUMNS)
    return 0


def _balances(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.balances(), ("asset", "free", "locked"))
    return 0


def _fills(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.fills(args.symbol, args.limit), FILL_COLUMNS)
    return 0


def _account(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        info = c.account()
    if args.json:
        emit(args, info)
    else:
        emit(args, {"account": info.account, "maker_fee_bps": info.maker_fee_bps,
                    "taker_fee_bps": info.taker_fee_bps,
                    "permissions": ",".join(info.permissions)})
    return 0
