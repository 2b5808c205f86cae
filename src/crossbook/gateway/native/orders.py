"""`/v1/orders`: place, query, amend and cancel orders (signed; trade or read permission).

Routes:
- `POST /v1/orders` place (`NewOrder`); answers the order after the command is durable,
  with the fills it made at once. An engine rejection answers 4xx with its reject code.
- `GET /v1/orders?symbol=` open orders; `DELETE /v1/orders?symbol=` cancel all on a symbol.
- `GET /v1/orders/history?symbol=&limit=&start_time=&end_time=&from_id=` orders, open and
  closed, newest first; with `from_id`, the first `limit` from that order id up, ascending.
  What the views no longer hold (older closed orders, everything closed before a restart)
  comes from the history database when one is configured (`gateway.history`).
- `GET`, `PATCH` (amend: `AmendOrder`), `DELETE` on `/v1/orders/{order_id}` and on
  `/v1/orders/client/{client_order_id}`.

Reads come from the durable views (an order shows only once it is on disk); an id that the
views no longer hold falls back to the history database when one is configured.
"""

from __future__ import annotations

import time

import msgspec

from crossbook.domain import commands as cmd
from crossbook.domain import events as ev
from crossbook.domain.enums import OrderType, Permission, TimeInForce
from crossbook.domain.rejects import Reject
from crossbook.gateway.context import GatewayContext
from crossbook.gateway.history import merge_orders, optional_int, reaches_past, time_range
from crossbook.gateway.http import (
    ApiError,
    Request,
    Response,
    Router,
    bad_request,
    int_param,
    json_response,
)
from crossbook.gateway.native import render
from crossbook.gateway.views import InstrumentRecord, KeyRecord, OrderRecord
from crossbook.protocol import native as wire
from crossbook.protocol.decimals import DecimalError, DecimalScale

_decode_order = msgspec.json.Decoder(wire.NewOrder).decode
_encode = msgspec.json.Encoder().encode
_perf = time.perf_counter_ns
_STOP_TYPES = frozenset((OrderType.STOP_LOSS, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT,
                         OrderType.TAKE_PROFIT_LIMIT))
_GTD = TimeInForce.GTD
"""Read per order: a module constant, not `TimeInForce.GTD` (an enum class attribute read goes
through the metaclass's hook on CPython 3.11)."""
_TYPES, _TIFS, _SIDES, _STPS = wire.TYPES, wire.TIFS, wire.SIDES, wire.STPS


def _parse(scale: DecimalScale, text: str | None, name: str) -> int:
    if text is None:
        return 0
    value = scale.parse(text)
    if isinstance(value, DecimalError):
        raise ApiError(400, value.code, f"{name} {value.message}")
    return value


def instrument(ctx: GatewayContext, symbol: str | None) -> InstrumentRecord:
    if not symbol:
        raise bad_request("the symbol parameter is required, e.g. symbol=BTC-USDT")
    record = ctx.views.instruments.get(symbol)
    if record is None:
        raise ApiError(400, Reject.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
    return record


def to_command(body: wire.NewOrder, account: int, inst: InstrumentRecord) -> cmd.PlaceOrder:
    """The engine command for a native order body; decimal refusals raise 400."""
    type_name = body.type or body.order_type
    if type_name is None:
        raise bad_request("type is required: limit, market, stop_loss, stop_limit, ...")
    scales = inst.scales
    order_type = _TYPES[type_name]
    tif = _TIFS[body.time_in_force]
    expire = 0
    if tif is _GTD:
        if body.expire_time is None:
            raise ApiError(400, Reject.INVALID_EXPIRE_TIME, "GTD orders need expire_time (ms)")
        expire = body.expire_time * 1_000_000
    stop = 0 if body.stop_price is None else _parse(scales.price, body.stop_price, "stop_price")
    if not stop and order_type in _STOP_TYPES:
        raise ApiError(400, Reject.INVALID_PRICE, f"{type_name} orders need stop_price")
    quantity, price = body.quantity, body.price
    quote, iceberg = body.quote_quantity, body.iceberg_quantity
    return cmd.PlaceOrder(  # the value types are aliases of int: no conversion needed
        account,
        body.symbol,
        _SIDES[body.side],
        order_type,
        0 if quantity is None else _parse(scales.quantity, quantity, "quantity"),
        0 if price is None else _parse(scales.price, price, "price"),
        tif,
        0 if quote is None else _parse(scales.quote, quote, "quote_quantity"),
        stop,
        expire,
        body.post_only,
        0 if iceberg is None else _parse(scales.quantity, iceberg, "iceberg_quantity"),
        _STPS[body.stp],
        body.client_order_id,
    )


def register(router: Router, ctx: GatewayContext) -> None:
    views, metrics = ctx.views, ctx.metrics
    trade, read = Permission.TRADE, Permission.READ

    async def place(request: Request) -> Response:
        started = _perf()
        try:
            body = _decode_order(request.body)
        except msgspec.ValidationError as exc:
            raise bad_request(f"invalid order: {exc}") from None
        except msgspec.DecodeError as exc:
            raise bad_request(f"body is not valid JSON: {exc}") from None
        inst = instrument(ctx, body.symbol)
        command = to_command(body, request.key.account, inst)
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
            raise render.reject_error(first.code, first.message)
        assert isinstance(first, ev.OrderAccepted)
        metrics.order("accepted")
        return Response(201, _encode(render.placed(first, applied.events, applied.ts, inst)))

    def owned(key: KeyRecord, found: OrderRecord | None, what: str) -> OrderRecord:
        if found is None or found.account != key.account:
            raise ApiError(404, Reject.UNKNOWN_ORDER, f"no order {what} on this account")
        return found

    def by_id(request: Request) -> OrderRecord:
        try:
            order_id = int(request.params["order_id"])
        except ValueError:
            raise bad_request("order id must be an integer") from None
        return owned(request.key, views.order(order_id), f"#{order_id}")

    def by_client_id(request: Request) -> OrderRecord:
        cid = request.params["client_order_id"]
        found = views.order_by_client_id(request.key.account, cid)
        return owned(request.key, found, f"with client order id {cid!r}")

    def show(order: OrderRecord) -> Response:
        return json_response(render.order(order, views.instruments[order.symbol]))

    async def get_order(request: Request) -> Response:
        return show(by_id(request))

    async def get_by_client_id(request: Request) -> Response:
        return show(by_client_id(request))

    async def cancel(order: OrderRecord) -> Response:
        applied = await ctx.execute(cmd.CancelOrder(
            order.account, order.symbol, order.order_id
        ))
        error = render.first_reject(applied.events)
        if error is not None:
            raise error
        return show(views.order(order.order_id) or order)

    async def cancel_order(request: Request) -> Response:
        return await cancel(by_id(request))

    async def cancel_by_client_id(request: Request) -> Response:
        return await cancel(by_client_id(request))

    async def amend(request: Request, order: OrderRecord) -> Response:
        body = request.json(wire.AmendOrder)
        scales = views.instruments[order.symbol].scales
        qty = _parse(scales.quantity, body.quantity, "quantity")
        price = _parse(scales.price, body.price, "price")
        if not qty and not price:
            raise bad_request("give quantity and/or price to amend")
        applied = await ctx.execute(cmd.AmendOrder(
            order.account, order.symbol, order.order_id, "",
            qty, price,
        ))
        error = render.first_reject(applied.events)
        if error is not None:
            metrics.order("rejected", error.code)
            raise error
        metrics.order("amended")
        return show(views.order(order.order_id) or order)

    async def amend_order(request: Request) -> Response:
        return await amend(request, by_id(request))

    async def amend_by_client_id(request: Request) -> Response:
        return await amend(request, by_client_id(request))

    async def open_orders(request: Request) -> Response:
        symbol = request.query.get("symbol") or None
        if symbol is not None:
            instrument(ctx, symbol)
        found = views.open_orders(request.key.account, symbol)
        return json_response([render.order(o, views.instruments[o.symbol]) for o in found])

    async def cancel_all(request: Request) -> Response:
        inst = instrument(ctx, request.query.get("symbol"))
        symbol = inst.instrument.symbol
        applied = await ctx.execute(cmd.CancelAllOrders(request.key.account, symbol))
        error = render.first_reject(applied.events)
        if error is not None:
            raise error
        canceled = [e.order_id for e in applied.events if isinstance(e, ev.OrderCanceled)]
        return json_response(wire.CanceledOrders(symbol, canceled))

    async def history(request: Request) -> Response:
        symbol = request.query.get("symbol") or None
        if symbol is not None:
            instrument(ctx, symbol)
        limit = int_param(request, "limit", 500, 1000)
        from_id = optional_int(request.query, "from_id")
        start, end = time_range(request.query)
        account = request.key.account
        found = [
            o for o in views.open_orders(account, symbol) + views.closed_orders(account, symbol)
            if (from_id is None or o.order_id >= from_id)
            and (start is None or o.created_ts >= start) and (end is None or o.created_ts < end)
        ]  # fmt: skip
        if ctx.history is not None and reaches_past(len(found), limit, from_id, start):
            stored = await ctx.history.orders(
                account, symbol=symbol, start=start, end=end, from_id=from_id, limit=limit,
                newest_first=from_id is None,
            )  # fmt: skip
            found = merge_orders(found, stored)
        if from_id is None:
            found.sort(key=lambda o: o.order_id, reverse=True)
        else:
            found.sort(key=lambda o: o.order_id)
        return json_response(
            [render.order(o, views.instruments[o.symbol]) for o in found[:limit]]
        )

    signed = {"auth": "native", "tags": ("orders",)}
    entry = {**signed, "inline": True}  # awaits only ctx.execute (Route.inline)
    router.add("POST", "/v1/orders", place, permission=trade, orders=True, body=wire.NewOrder,
               response=wire.Order, summary="Place an order", **entry)
    router.add("GET", "/v1/orders", open_orders, permission=read, weight=3,
               response=list[wire.Order], summary="Open orders", **entry)
    router.add("DELETE", "/v1/orders", cancel_all, permission=trade,
               response=wire.CanceledOrders, summary="Cancel all orders on a symbol", **entry)
    router.add("GET", "/v1/orders/history", history, permission=read, weight=10,
               response=list[wire.Order], summary="Recent orders, newest first", **signed)
    for path, get, delete, patch in (
        ("/v1/orders/{order_id}", get_order, cancel_order, amend_order),
        ("/v1/orders/client/{client_order_id}", get_by_client_id, cancel_by_client_id,
         amend_by_client_id),
    ):
        router.add("GET", path, get, permission=read, response=wire.Order,
                   summary="Query an order", **entry)
        router.add("DELETE", path, delete, permission=trade, response=wire.Order,
                   summary="Cancel an order", **entry)
        router.add("PATCH", path, patch, permission=trade, orders=True, body=wire.AmendOrder,
                   response=wire.Order, summary="Amend price and/or quantity", **entry)

