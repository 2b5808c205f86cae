"""Signed Binance order routes: `/api/v3/order` (POST new, GET query, DELETE cancel),
`/api/v3/order/test`, `/api/v3/openOrders` (GET, DELETE) and `/api/v3/allOrders`.

New orders (`to_command`): `symbol`, `side` BUY/SELL, `type` LIMIT, LIMIT_MAKER (a post-only
GTC limit), MARKET, STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT;
`timeInForce` GTC/IOC/FOK (required for limit-priced types, ignored otherwise); `quantity`;
`quoteOrderQty` (market buys: crossbook sizes market sells by base only, -1128 otherwise);
`price`, `stopPrice`, `icebergQty`; `newClientOrderId` (generated when absent);
`newOrderRespType` ACK/RESULT/FULL (default FULL); `selfTradePreventionMode` when it names a
crossbook mode. Other parameters are ignored. The answer comes after the command is
durable; an engine rejection becomes its Binance code (`errors.from_reject`).

Queries read the durable views: `GET /order` of an unknown order (or another account's) is
-2013; `DELETE /order` of an unknown or closed order is -2011. Orders stay queryable after
they close while the views keep them (`GatewayViews.closed_keep`). `allOrders` with
`orderId` lists from that id up; without it, the most recent `limit`; both oldest first.
When memory holds fewer than `limit` matches, or `orderId`/`startTime` names a lower bound,
orders from the history database (`gateway.history`, when one is configured) are merged in,
memory winning on the same order id. Stored orders carry no quote filled, so their
`cummulativeQuoteQty` is estimated as limit price times filled quantity (0 for market
orders).
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import OrderType, Permission, Side, StpMode, TimeInForce
from crossbook.domain.values import AccountId, Lots, OrderId, Ticks, Units
from crossbook.gateway.binance import render
from crossbook.gateway.binance.errors import (
    LOT_SIZE,
    NOTIONAL,
    ORDER_DOES_NOT_EXIST,
    PRICE_FILTER,
    UNKNOWN_ORDER_SENT,
    binance_error,
    from_reject,
    illegal,
    missing,
)
from crossbook.gateway.binance.params import Params, signed
from crossbook.gateway.binance.symbols import Formats, SymbolTable, ns_range, rate
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import merge_orders, reaches_past
from crossbook.gateway.http import Request, Response, Router, json_response
from crossbook.gateway.views import InstrumentRecord, KeyRecord, OrderRecord

_perf = time.perf_counter_ns
_TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
_LIMIT_PRICED = (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
_RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
_CLIENT_ID_CHARS = frozenset("._:/-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def new_client_order_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def client_order_id(params: Params, name: str) -> str:
    given = params.get(name)
    if given is None:
        return new_client_order_id()
    if len(given) > 36 or not _CLIENT_ID_CHARS.issuperset(given):
        raise illegal(name, "^[\\.A-Z\\:/a-z0-9_-]{1,36}$")
    return given


def _not_required(name: str) -> Exception:
    return binance_error(-1106, f"Parameter '{name}' sent when not required.")


def to_command(params: Params, account: int, record: InstrumentRecord) -> cmd.PlaceOrder:
    """The engine command for a Binance new-order request (Binance codes on bad input)."""
    side = render.SIDES.get(params.require("side").upper())
    if side is None:
        raise binance_error(-1117, "Invalid side.")
    type_text = params.require("type").upper()
    order_type = render.TYPES.get(type_text)
    if order_type is None:
        raise binance_error(-1116, "Invalid orderType.")
    maker = type_text == "LIMIT_MAKER"
    limit_priced = order_type in _LIMIT_PRICED
    tif = TimeInForce.GTC
    if limit_priced and not maker:
        found = _TIFS.get(params.require("timeInForce").upper())
        if found is None:
            raise binance_error(-1115, "Invalid timeInForce.")
        tif = found
    scales = record.scales
    price = params.decimal("price", scales.price, PRICE_FILTER, required=limit_priced)
    if price and not limit_priced:
        raise _not_required("price")
    stop = params.decimal("stopPrice", scales.price, PRICE_FILTER, required=order_type.is_stop)
    if stop and not order_type.is_stop:
        raise _not_required("stopPrice")
    qty = params.decimal("quantity", scales.quantity, LOT_SIZE)
    quote = params.decimal("quoteOrderQty", scales.quote, NOTIONAL)
    if order_type is OrderType.MARKET:
        if not qty and not quote:
            raise binance_error(
                -1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were "
                "empty/null!",
            )
        if qty and quote:
            raise _not_required("quoteOrderQty")
        if quote and side is Side.SELL:
            raise binance_error(
                -1128, "Combination of optional parameters invalid: quoteOrderQty is "
                "supported for MARKET BUY orders only; send quantity to sell.",
            )
    elif quote:
        raise _not_required("quoteOrderQty")
    elif not qty:
        raise missing("quantity")
    stp_text = (params.get("selfTradePreventionMode") or "NONE").upper()
    return cmd.PlaceOrder(
        account=AccountId(account),
        symbol=record.instrument.symbol,
        side=side,
        type=order_type,
        qty=Lots(qty),
        price=Ticks(price),
        tif=tif,
        quote_qty=Units(quote),
        stop_price=Ticks(stop),
        post_only=maker,
        visible_qty=Lots(params.decimal("icebergQty", scales.quantity, LOT_SIZE)),
        stp=StpMode.__members__.get(stp_text, StpMode.NONE),
        client_order_id=client_order_id(params, "newClientOrderId"),
    )


def check_filters(command: cmd.PlaceOrder, record: InstrumentRecord) -> None:
    """The instrument's bounds and minimum notional, as the engine checks them (-1013)."""
    inst = record.instrument
    for price in (command.price, command.stop_price):
        if price and not inst.min_price <= price <= inst.max_price:
            raise binance_error(-1013, PRICE_FILTER)
    if command.qty and not inst.min_qty <= command.qty <= inst.max_qty:
        raise binance_error(-1013, LOT_SIZE)
    if command.price and inst.notional(command.price, command.qty) < inst.min_notional:
        raise binance_error(-1013, NOTIONAL)
    if command.quote_qty and command.quote_qty < inst.min_notional:
        raise binance_error(-1013, NOTIONAL)


def response_type(params: Params) -> str:
    kind = (params.get("newOrderRespType") or "FULL").upper()
    if kind not in _RESPONSE_TYPES:
        raise illegal("newOrderRespType", "ACK, RESULT, FULL")
    return kind


def register(router: Router, ctx: GatewayContext, table: SymbolTable) -> None:
    views, metrics = ctx.views, ctx.metrics

    def fmt(symbol: str) -> Formats:
        return table.formats(symbol)

    def find(params: Params, key: KeyRecord, record: InstrumentRecord) -> OrderRecord | None:
        order_id = params.integer("orderId")
        if order_id is not None:
            found = views.order(order_id)
        else:
            cid = params.get("origClientOrderId")
            if cid is None:
                raise binance_error(
                    -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both "
                    "were empty/null!",
                )
            found = views.order_by_client_id(key.account, cid)
        if found is None or found.account != key.account:
            return None
        return found if found.symbol == record.instrument.symbol else None

    async def place(request: Request, params: Params, key: KeyRecord) -> Response:
        started = _perf()
        record = table.lookup(params.get("symbol"))
        command = to_command(params, key.account, record)
        kind = response_type(params)
        request.submitted_ns = submitted = _perf()
        metrics.observe_ns("decode", submitted - started)
        if request.received_ns:
            metrics.observe_ns("intake", submitted - request.received_ns)
        applied = await ctx.execute(command)
        request.resumed_ns = _perf()
        first = applied.events[0]
        if type(first) is not ev.OrderAccepted:
            assert isinstance(first, ev.OrderRejected)
            metrics.order("rejected", first.code)
            raise from_reject(first.code, first.message)
        assert isinstance(first, ev.OrderAccepted)
        metrics.order("accepted")
        f = fmt(record.instrument.symbol)
        done = render.placed(first, applied.events, applied.ts, f)
        return json_response(render.acknowledgement(done, f, applied.ts, kind))

    async def test_order(request: Request, params: Params, key: KeyRecord) -> Response:
        record = table.lookup(params.get("symbol"))
        command = to_command(params, key.account, record)
        response_type(params)
        check_filters(command, record)
        if not params.boolean("computeCommissionRates"):
            return Response(200, b"{}")
        account = views.accounts.get(key.account)
        maker, taker = (0, 0) if account is None else (account.maker_fee_bps,
                                                       account.taker_fee_bps)
        zero = rate(0)
        return json_response({
            "standardCommissionForOrder": {"maker": rate(maker), "taker": rate(taker)},
            "taxCommissionForOrder": {"maker": zero, "taker": zero},
            "discount": {"enabledForAccount": False, "enabledForSymbol": False,
                         "discountAsset": "", "discount": zero},
        })

    async def query(request: Request, params: Params, key: KeyRecord) -> Response:
        record = table.lookup(params.get("symbol"))
        found = find(params, key, record)
        if found is None:
            raise binance_error(-2013, ORDER_DOES_NOT_EXIST)
        return json_response(render.order(found, fmt(found.symbol)))

    async def cancel(request: Request, params: Params, key: KeyRecord) -> Response:
        record = table.lookup(params.get("symbol"))
        found = find(params, key, record)
        if found is None or not found.status.is_open:
            raise binance_error(-2011, UNKNOWN_ORDER_SENT)
        cancel_id = client_order_id(params, "newClientOrderId")
        applied = await ctx.execute(cmd.CancelOrder(
            AccountId(key.account), found.symbol, OrderId(found.order_id)
        ))
        for event in applied.events:
            if isinstance(event, ev.OrderRejected):
                raise from_reject(event.code, event.message, "cancel")
        after = views.order(found.order_id) or found
        return json_response(render.canceled(after, fmt(found.symbol), cancel_id, applied.ts))

    async def open_orders(request: Request, params: Params, key: KeyRecord) -> Response:
        name = params.get("symbol")
        symbol = None if name is None else table.lookup(name).instrument.symbol
        found = sorted(views.open_orders(key.account, symbol), key=lambda o: o.order_id)
        return json_response([render.order(o, fmt(o.symbol)) for o in found])

    async def cancel_all(request: Request, params: Params, key: KeyRecord) -> Response:
        record = table.lookup(params.get("symbol"))
        symbol = record.instrument.symbol
        applied = await ctx.execute(cmd.CancelAllOrders(AccountId(key.account), symbol))
        out: list[dict[str, Any]] = []
        for event in applied.events:
            if isinstance(event, ev.OrderRejected):
                raise from_reject(event.code, event.message, "cancel")
            if isinstance(event, ev.OrderCanceled):
                after = views.order(event.order_id)
                if after is not None:
                    out.append(render.canceled(
                        after, fmt(symbol), new_client_order_id(), applied.ts
                    ))
        return json_response(out)

    async def all_orders(request: Request, params: Params, key: KeyRecord) -> Response:
        symbol = table.lookup(params.require("symbol")).instrument.symbol
        from_id = params.integer("orderId")
        start, end = params.integer("startTime"), params.integer("endTime")
        limit = params.limit(500, 1000)
        lo, hi = ns_range(start, end)
        found = views.open_orders(key.account, symbol) + views.closed_orders(key.account, symbol)
        chosen = [
            o for o in found
            if (from_id is None or o.order_id >= from_id)
            and (lo is None or o.created_ts >= lo) and (hi is None or o.created_ts < hi)
        ]  # fmt: skip
        if ctx.history is not None and reaches_past(len(chosen), limit, from_id, lo):
            stored = await ctx.history.orders(
                key.account, symbol=symbol, start=lo, end=hi, from_id=from_id, limit=limit,
                newest_first=from_id is None,
            )  # fmt: skip
            chosen = merge_orders(chosen, stored)
        chosen.sort(key=lambda o: o.order_id)
        chosen = chosen[:limit] if from_id is not None else chosen[-limit:]
        return json_response([render.order(o, fmt(o.symbol)) for o in chosen])

    trade, read = Permission.TRADE, Permission.READ
    tags = {"tags": ("binance trading",)}
    entry = {**tags, "inline": True}  # awaits only ctx.execute (Route.inline)
    router.add("POST", "/api/v3/order", signed(ctx, place, trade, 1, orders=True), weight=1,
               orders=True, summary="Binance: new order (signed)", **entry)
    router.add("POST", "/api/v3/order/test", signed(ctx, test_order, trade, 1), weight=1,
               summary="Binance: validate a new order (signed)", **entry)
    router.add("GET", "/api/v3/order", signed(ctx, query, read, 4), weight=4,
               summary="Binance: query an order (signed)", **tags)
    router.add("DELETE", "/api/v3/order", signed(ctx, cancel, trade, 1), weight=1,
               summary="Binance: cancel an order (signed)", **entry)
    router.add("GET", "/api/v3/openOrders", signed(ctx, open_orders, read, 6), weight=6,
               summary="Binance: open orders (signed)", **tags)
    router.add("DELETE", "/api/v3/openOrders", signed(ctx, cancel_all, trade, 1), weight=1,
               summary="Binance: cancel all open orders on a symbol (signed)", **entry)
    router.add("GET", "/api/v3/allOrders", signed(ctx, all_orders, read, 20), weight=20,
               summary="Binance: all orders (signed)", **tags)
