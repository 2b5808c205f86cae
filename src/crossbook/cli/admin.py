"""`crossbook admin ...`: operator commands through the SDK (an admin-permission key).

    crossbook admin accounts create 7 [--maker-fee-bps 1 --taker-fee-bps 5]
    crossbook admin accounts list
    crossbook admin fees 7 --maker-fee-bps 0 --taker-fee-bps 2
    crossbook admin deposit 7 USDT 1000 [--tx-id ID]     (withdraw: the same)
    crossbook admin keys create 7 [--permissions read,trade] [--label bot]
    crossbook admin keys list | keys revoke KEY
    crossbook admin assets add DOGE 8
    crossbook admin instruments add DOGE-USDT DOGE USDT 0.00001 1 [--min-notional 1]
    crossbook admin instruments list
    crossbook admin halt BTC-USDT | resume BTC-USDT

Connection flags and `--json` as in `crossbook.cli.common`.
"""

from __future__ import annotations

import argparse
from typing import Any, cast

from crossbook.cli.common import add_connection_args, connection, emit, guarded
from crossbook.protocol import native as wire

ACCOUNT_COLUMNS = ("account", "maker_fee_bps", "taker_fee_bps")
KEY_COLUMNS = ("key", "account", "permissions", "label", "secret")
INSTRUMENT_COLUMNS = ("symbol", "base", "quote", "tick_size", "lot_size", "min_notional",
                      "status")


def register(sub: Any) -> None:
    admin: argparse.ArgumentParser = sub.add_parser(
        "admin", help="operate a node: accounts, deposits, keys, instruments, fees, halt/resume",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    nouns = admin.add_subparsers(dest="noun", metavar="WHAT", required=True)

    def command(parent: Any, name: str, help: str, func: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help, description=help)
        add_connection_args(parser)
        parser.set_defaults(func=guarded(func))
        return parser

    accounts = nouns.add_parser("accounts", help="create and list accounts")
    verbs = accounts.add_subparsers(dest="verb", metavar="ACTION", required=True)
    p = command(verbs, "create", "create an account", _create_account)
    p.add_argument("account", type=int)
    p.add_argument("--maker-fee-bps", type=int, default=0)
    p.add_argument("--taker-fee-bps", type=int, default=0)
    command(verbs, "list", "list accounts", _list_accounts)

    p = command(nouns, "fees", "set an account's maker and taker fees (basis points)", _fees)
    p.add_argument("account", type=int)
    p.add_argument("--maker-fee-bps", type=int, required=True)
    p.add_argument("--taker-fee-bps", type=int, required=True)

    for name, func in (("deposit", _deposit), ("withdraw", _withdraw)):
        p = command(nouns, name, f"{name} an amount of an asset", func)
        p.add_argument("account", type=int)
        p.add_argument("asset")
        p.add_argument("amount")
        p.add_argument("--tx-id", help="idempotency id (default: generated)")

    keys = nouns.add_parser("keys", help="create, list and revoke API keys")
    verbs = keys.add_subparsers(dest="verb", metavar="ACTION", required=True)
    p = command(verbs, "create", "create an API key (the secret is shown once)", _create_key)
    p.add_argument("account", type=int)
    p.add_argument("--permissions", default="read,trade",
                   help="comma-separated: read, trade, admin (default read,trade)")
    p.add_argument("--label", default="")
    command(verbs, "list", "list live API keys", _list_keys)
    p = command(verbs, "revoke", "revoke an API key", _revoke_key)
    p.add_argument("api_key", metavar="KEY")

    assets = nouns.add_parser("assets", help="add and list assets")
    verbs = assets.add_subparsers(dest="verb", metavar="ACTION", required=True)
    p = command(verbs, "add", "add an asset", _add_asset)
    p.add_argument("code")
    p.add_argument("precision", type=int)
    command(verbs, "list", "list assets", _list_assets)

    instruments = nouns.add_parser("instruments", help="add and list instruments")
    verbs = instruments.add_subparsers(dest="verb", metavar="ACTION", required=True)
    p = command(verbs, "add", "add an instrument", _add_instrument)
    for name in ("symbol", "base", "quote", "tick_size", "lot_size"):
        p.add_argument(name)
    for name in ("min_quantity", "max_quantity", "min_price", "max_price", "min_notional"):
        p.add_argument(f"--{name.replace('_', '-')}", dest=name)
    command(verbs, "list", "list instruments", _list_instruments)

    for name, func in (("halt", _halt), ("resume", _resume)):
        p = command(nouns, name, f"{name} trading on a symbol", func)
        p.add_argument("symbol")


def _create_account(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.create_account(args.account, args.maker_fee_bps, args.taker_fee_bps),
             ACCOUNT_COLUMNS)
    return 0


def _list_accounts(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.list_accounts(), ACCOUNT_COLUMNS)
    return 0


def _fees(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.set_fees(args.account, args.maker_fee_bps, args.taker_fee_bps),
             ACCOUNT_COLUMNS)
    return 0


def _transfer(args: argparse.Namespace, deposit: bool) -> int:
    with connection(args).client() as c:
        run = c.deposit if deposit else c.withdraw
        done = run(args.account, args.asset, args.amount, args.tx_id)
    if args.json:
        emit(args, done)
    else:
        emit(args, {"account": done.account, "asset": done.asset, "amount": done.amount,
                    "tx_id": done.tx_id, "free": done.balance.free,
                    "locked": done.balance.locked})
    return 0


def _deposit(args: argparse.Namespace) -> int:
    return _transfer(args, True)


def _withdraw(args: argparse.Namespace) -> int:
    return _transfer(args, False)


def _permissions(text: str) -> list[wire.PermissionName]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in ("read", "trade", "admin")]
    if bad:
        raise SystemExit(f"crossbook: unknown permission(s) {', '.join(bad)}")
    return cast(list[wire.PermissionName], names)


def _create_key(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.create_api_key(args.account, _permissions(args.permissions), args.label),
             KEY_COLUMNS)
    return 0


def _list_keys(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.list_api_keys(), KEY_COLUMNS[:-1])
    return 0


def _revoke_key(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.revoke_api_key(args.api_key), KEY_COLUMNS[:-1])
    return 0


def _add_asset(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.add_asset(args.code, args.precision))
    return 0


def _list_assets(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.assets())
    return 0


def _add_instrument(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.add_instrument(
            args.symbol, args.base, args.quote, args.tick_size, args.lot_size,
            min_quantity=args.min_quantity, max_quantity=args.max_quantity,
            min_price=args.min_price, max_price=args.max_price,
            min_notional=args.min_notional or "0",
        ), INSTRUMENT_COLUMNS)
    return 0


def _list_instruments(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.instruments(), INSTRUMENT_COLUMNS)
    return 0


def _halt(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.halt(args.symbol), INSTRUMENT_COLUMNS)
    return 0


def _resume(args: argparse.Namespace) -> int:
    with connection(args).client() as c:
        emit(args, c.resume(args.symbol), INSTRUMENT_COLUMNS)
    return 0
