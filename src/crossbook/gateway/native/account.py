"""`/v1/account`, `/v1/balances`, `/v1/fills`: the signed caller's own account (read).

Balances and fills come from the durable views: balances are exact; fills are the newest
ones kept in memory (`GatewayViews.fills_keep` per account). `GET /v1/fills?symbol=&limit=
&order_id=&start_time=&end_time=&from_id=` answers newest first (with `from_id`, a trade id,
the first `limit` from there, ascending); what memory does not hold (older fills, fills
before a restart) comes from the history database when one is configured.
"""

from __future__ import annotations

from crossbook.domain.enums import Permission
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import merge_fills, optional_int, reaches_past, time_range
from crossbook.gateway.http import Request, Response, Router, int_param, json_response
from crossbook.gateway.native import render
from crossbook.gateway.native.orders import instrument
from crossbook.gateway.views import GatewayViews
from crossbook.protocol import native as wire
from crossbook.protocol.decimals import scale_for_precision


def balances(views: GatewayViews, account: int) -> list[wire.Balance]:
    record = views.accounts.get(account)
    if record is None:
        return []
    out = []
    for asset, (free, locked) in sorted(record.balances.items()):
        precision = views.assets[asset].precision if asset in views.assets else 0
        scale = scale_for_precision(precision)
        out.append(wire.Balance(asset, scale.format(free), scale.format(locked)))
    return out


def permission_names(permissions: Permission) -> list[wire.PermissionName]:
    names: list[wire.PermissionName] = []
    if permissions & Permission.READ:
        names.append("read")
    if permissions & Permission.TRADE:
        names.append("trade")
    if permissions & Permission.ADMIN:
        names.append("admin")
    return names


def register(router: Router, ctx: GatewayContext) -> None:
    views = ctx.views

    async def get_balances(request: Request) -> Response:
        return json_response(balances(views, request.key.account))

    async def get_account(request: Request) -> Response:
        key = request.key
        record = views.accounts.get(key.account)
        maker, taker = (0, 0) if record is None else (record.maker_fee_bps, record.taker_fee_bps)
        return json_response(wire.AccountInfo(
            key.account, maker, taker, permission_names(key.permissions),
            balances(views, key.account),
        ))

    async def get_fills(request: Request) -> Response:
        symbol = request.query.get("symbol") or None
        if symbol is not None:
            instrument(ctx, symbol)
        limit = int_param(request, "limit", 500, 1000)
        order_id, from_id = optional_int(request.query, "order_id"), optional_int(
            request.query, "from_id")  # fmt: skip
        start, end = time_range(request.query)
        account = request.key.account
        found = [
            f for f in views.fills(account)
            if symbol in (None, f.symbol) and order_id in (None, f.order_id)
            and (from_id is None or f.trade_id >= from_id)
            and (start is None or f.ts >= start) and (end is None or f.ts < end)
        ]  # fmt: skip
        if ctx.history is not None and reaches_past(len(found), limit, from_id, start):
            stored = await ctx.history.fills(
                account, symbol=symbol, order_id=order_id, start=start, end=end,
                from_id=from_id, limit=limit, newest_first=from_id is None,
            )  # fmt: skip
            found = merge_fills(found, stored)
        if from_id is None:
            found.reverse()
        return json_response(
            [render.fill(f, views.instruments[f.symbol]) for f in found[:limit]]
        )

    signed = {"auth": "native", "permission": Permission.READ, "tags": ("account",)}
    router.add("GET", "/v1/account", get_account, weight=5, response=wire.AccountInfo,
               summary="The caller's account: fees, permissions, balances", **signed)
    router.add("GET", "/v1/balances", get_balances, weight=5, response=list[wire.Balance],
               summary="Balances, free and locked", **signed)
    router.add("GET", "/v1/fills", get_fills, weight=10, response=list[wire.Fill],
               summary="The caller's fills, newest first (history past memory)", **signed)
