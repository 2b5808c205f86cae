"""Signed Binance account routes: `/api/v3/account`, `/api/v3/myTrades`, and the listen keys
of `/api/v3/userDataStream` (POST create, PUT keepalive, DELETE close; API key only).

- `account`: fees in basis points (Binance's `makerCommission` unit) and as rates, every
  asset the exchange knows with its free and locked balance (`omitZeroBalances=true` drops
  empty ones), `canTrade` from the key's trade permission. `updateTime` is the stamp of the
  last durable batch the views folded.
- `myTrades`: the account's fills on `symbol` kept in memory (the newest
  `GatewayViews.fills_keep`), filtered by `orderId`, `fromId`, `startTime`/`endTime`;
  oldest first, the first `limit` from `fromId` or else the latest `limit`. Fills memory
  no longer holds (older ones, those before a restart) come from the history database
  (`gateway.history`) when one is configured, merged by trade and order id, memory winning.
- Listen keys live in `GatewayContext.listen_keys` (`crossbook.gateway.listen_keys`), where
  the WebSocket server resolves them, and change through `GatewayContext.listen_key_ops`
  (the core's registry, from a gateway worker); an unknown or expired key is -1125.
"""

from __future__ import annotations

from typing import Any

from crossbook.domain.enums import Permission
from crossbook.gateway.binance.errors import binance_error
from crossbook.gateway.binance.params import Params, api_key, signed
from crossbook.gateway.binance.render import trade
from crossbook.gateway.binance.symbols import SymbolTable, amount, ms, ns_range, rate
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import merge_fills, reaches_past
from crossbook.gateway.http import Request, Response, Router, json_response
from crossbook.gateway.views import KeyRecord


def register(router: Router, ctx: GatewayContext, table: SymbolTable) -> None:
    views = ctx.views

    async def account(request: Request, params: Params, key: KeyRecord) -> Response:
        record = views.accounts.get(key.account)
        maker, taker = (0, 0) if record is None else (record.maker_fee_bps,
                                                     record.taker_fee_bps)
        held = {} if record is None else record.balances
        omit_zero = params.boolean("omitZeroBalances")
        balances: list[dict[str, Any]] = []
        for code, asset in sorted(views.assets.items()):
            free, locked = held.get(code, (0, 0))
            if omit_zero and not free and not locked:
                continue
            balances.append({"asset": code, "free": amount(asset.precision, free),
                             "locked": amount(asset.precision, locked)})
        can_trade = bool(key.permissions & Permission.TRADE) and record is not None
        return json_response({
            "makerCommission": maker, "takerCommission": taker, "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {"maker": rate(maker), "taker": rate(taker), "buyer": rate(0),
                                "seller": rate(0)},
            "canTrade": can_trade, "canWithdraw": False, "canDeposit": False,
            "brokered": False, "requireSelfTradePrevention": False, "preventSor": False,
            "updateTime": ms(views.last_ts), "accountType": "SPOT", "balances": balances,
            "permissions": ["SPOT"], "uid": key.account,
        })

    async def my_trades(request: Request, params: Params, key: KeyRecord) -> Response:
        symbol = table.lookup(params.require("symbol")).instrument.symbol
        order_id = params.integer("orderId")
        from_id = params.integer("fromId")
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = params.limit(500, 1000)
        lo, hi = ns_range(start, end)
        chosen = [
            f for f in views.fills(key.account)
            if f.symbol == symbol
            and (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (lo is None or f.ts >= lo) and (hi is None or f.ts < hi)
        ]  # fmt: skip
        if ctx.history is not None and reaches_past(len(chosen), limit, from_id, lo):
            stored = await ctx.history.fills(
                key.account, symbol=symbol, order_id=order_id, start=lo, end=hi,
                from_id=from_id, limit=limit, newest_first=from_id is None,
            )  # fmt: skip
            chosen = merge_fills(chosen, stored)
        chosen = chosen[:limit] if from_id is not None else chosen[-limit:]
        formats = table.formats(symbol)
        return json_response([trade(f, formats) for f in chosen])

    def listen_key_param(params: Params) -> str:
        return params.require("listenKey")

    async def create_stream(request: Request) -> Response:
        key = api_key(request, views.keys)
        return json_response({"listenKey": await ctx.listen_key_ops.create(key.account,
                                                                           key.key)})

    async def keepalive_stream(request: Request) -> Response:
        key = api_key(request, views.keys)
        if not await ctx.listen_key_ops.keepalive(listen_key_param(Params.of(request)),
                                                  key.account):
            raise binance_error(-1125, "This listenKey does not exist.")
        return Response(200, b"{}")

    async def close_stream(request: Request) -> Response:
        key = api_key(request, views.keys)
        if not await ctx.listen_key_ops.close(listen_key_param(Params.of(request)),
                                              key.account):
            raise binance_error(-1125, "This listenKey does not exist.")
        return Response(200, b"{}")

    read = Permission.READ
    tags = {"tags": ("binance account",)}
    router.add("GET", "/api/v3/account", signed(ctx, account, read, 20), weight=20,
               summary="Binance: account and balances (signed)", **tags)
    router.add("GET", "/api/v3/myTrades", signed(ctx, my_trades, read, 20), weight=20,
               summary="Binance: the account's trades on a symbol (signed)", **tags)
    path = "/api/v3/userDataStream"
    router.add("POST", path, create_stream, weight=2,
               summary="Binance: create a listen key (API key)", **tags)
    router.add("PUT", path, keepalive_stream, weight=2,
               summary="Binance: keep a listen key alive (API key)", **tags)
    router.add("DELETE", path, close_stream, weight=2,
               summary="Binance: close a listen key (API key)", **tags)
