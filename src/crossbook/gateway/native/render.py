"""Records and events to native wire structs (`crossbook.protocol.native`), and engine
reject codes to HTTP statuses. Integers become decimal strings here and nowhere else."""

from __future__ import annotations

from crossbook.domain import events as ev
from crossbook.domain.enums import OrderStatus, OrderType, Side, StpMode, TimeInForce
from crossbook.domain.rejects import Reject
from crossbook.gateway.http import ApiError
from crossbook.gateway.views import FillRecord, InstrumentRecord, OrderRecord
from crossbook.protocol import native as wire

_NS_PER_MS = 1_000_000
_TIF_NAMES = {tif: tif.name for tif in TimeInForce}
_SIDE_NAMES, _TYPE_NAMES = wire.SIDE_NAMES, wire.TYPE_NAMES
_STATUS_NAMES, _STP_NAMES = wire.STATUS_NAMES, wire.STP_NAMES
_CLOSED = (ev.OrderCanceled, ev.OrderExpired)
# Members read on every order: a module constant, not `Class.MEMBER` (on CPython 3.11 that
# read goes through the enum metaclass's attribute hook).
_GTD = TimeInForce.GTD
_NEW = OrderStatus.NEW
_FILLED = OrderStatus.FILLED
_EXPIRED = OrderStatus.EXPIRED
_TRADE, _CANCELED, _EXPIRED_EVENT = ev.TradeExecuted, ev.OrderCanceled, ev.OrderExpired
_MARKET_TYPES = frozenset(t for t in OrderType if t.is_market)
_OPEN = frozenset(s for s in OrderStatus if s.is_open)
_NOT_FOUND = {Reject.UNKNOWN_ORDER, Reject.UNKNOWN_API_KEY}
_CONFLICT = {
    Reject.DUPLICATE_CLIENT_ORDER_ID, Reject.ACCOUNT_EXISTS, Reject.ASSET_EXISTS,
    Reject.SYMBOL_EXISTS, Reject.DUPLICATE_TRANSACTION, Reject.API_KEY_EXISTS,
    Reject.ORDER_NOT_OPEN,
}


def reject_error(code: int, message: str) -> ApiError:
    """An engine rejection as a client error: 404 unknown, 409 conflict, else 400."""
    status = 404 if code in _NOT_FOUND else 409 if code in _CONFLICT else 400
    return ApiError(status, code, message)


def first_reject(events: list[ev.Event]) -> ApiError | None:
    for event in events:
        if isinstance(event, ev.OrderRejected):
            return reject_error(event.code, event.message)
    return None


def ms(ns: int) -> int:
    return ns // _NS_PER_MS


def order(
    o: OrderRecord, inst: InstrumentRecord, fills: list[wire.Fill] | None = None
) -> wire.Order:
    return _order(
        o.order_id, o.client_order_id, o.symbol, o.side, o.type, o.status, o.tif, o.qty,
        o.price, o.quote_qty, o.stop_price, o.filled, o.post_only, o.visible_qty, o.stp,
        o.expire_ts, o.created_ts, o.updated_ts, inst, fills,
    )


def _order(
    order_id: int, client_order_id: str, symbol: str, side: Side, type_: OrderType,
    status: OrderStatus, tif: TimeInForce, qty: int, price: int, quote_qty: int,
    stop_price: int, filled: int, post_only: bool, visible_qty: int, stp: StpMode,
    expire_ts: int, created_ts: int, updated_ts: int, inst: InstrumentRecord,
    fills: list[wire.Fill] | None,
) -> wire.Order:
    scales = inst.scales
    price_text, quantity = scales.price.format, scales.quantity.format
    return wire.Order(
        order_id,
        client_order_id,
        symbol,
        _SIDE_NAMES[side],  # type: ignore[arg-type]
        _TYPE_NAMES[type_],  # type: ignore[arg-type]
        _STATUS_NAMES[status],
        _TIF_NAMES[tif],  # type: ignore[arg-type]
        quantity(qty) if qty else None,
        price_text(price) if price else None,
        scales.quote.format(quote_qty) if quote_qty else None,
        price_text(stop_price) if stop_price else None,
        quantity(filled),
        post_only,
        quantity(visible_qty) if visible_qty else None,
        _STP_NAMES[stp],  # type: ignore[arg-type]
        expire_ts // _NS_PER_MS if tif is _GTD else None,
        created_ts // _NS_PER_MS,
        updated_ts // _NS_PER_MS,
        fills,
    )


def fill(f: FillRecord, inst: InstrumentRecord) -> wire.Fill:
    scales = inst.scales
    return wire.Fill(
        trade_id=f.trade_id,
        symbol=f.symbol,
        order_id=f.order_id,
        client_order_id=f.client_order_id,
        side=wire.SIDE_NAMES[f.side],  # type: ignore[arg-type]
        price=scales.price.format(f.price),
        quantity=scales.quantity.format(f.qty),
        quote_quantity=scales.quote.format(f.quote_qty),
        fee=scales.quote.format(f.fee),
        fee_asset=inst.instrument.quote,
        liquidity="maker" if f.maker else "taker",
        time=ms(f.ts),
    )


def placed(accepted: ev.OrderAccepted, events: list[ev.Event], ts: int,
           inst: InstrumentRecord) -> wire.Order:
    """The acknowledgement of an accepted order: its state after the command, with fills."""
    oid = accepted.order_id
    filled, status = 0, _NEW
    fills: list[wire.Fill] = []
    for event in events:
        kind = type(event)
        if kind is _TRADE:
            assert isinstance(event, ev.TradeExecuted)
            if event.taker_order_id == oid:
                filled, status = event.taker_filled, event.taker_status
                fills.append(fill(FillRecord(
                    event.trade_id, event.symbol, oid, accepted.client_order_id,
                    event.taker_side, event.price, event.qty, event.quote_qty, event.taker_fee,
                    False, ts,
                ), inst))
            elif event.maker_order_id == oid:  # a stop that triggered and then rested
                filled, status = event.maker_filled, event.maker_status
        elif kind is _CANCELED or kind is _EXPIRED_EVENT:
            assert isinstance(event, _CLOSED)
            if event.order_id == oid:
                filled, status = event.filled, event.status
    if accepted.type in _MARKET_TYPES and accepted.working and status in _OPEN:
        status = _FILLED if filled else _EXPIRED
    return _order(
        oid, accepted.client_order_id, accepted.symbol, accepted.side, accepted.type, status,
        accepted.tif, accepted.qty, accepted.price, accepted.quote_qty, accepted.stop_price,
        filled, accepted.post_only, accepted.visible_qty, accepted.stp, accepted.expire_ts,
        ts, ts, inst, fills,
    )


def side_of(name: str) -> Side:
    return wire.SIDES[name]
