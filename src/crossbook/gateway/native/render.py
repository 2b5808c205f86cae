"""Records and events to native wire structs (`crossbook.protocol.native`), and engine
reject codes to HTTP statuses. Integers become decimal strings here and nowhere else."""

from __future__ import annotations

from crossbook.domain import events as ev
from crossbook.domain.enums import OrderStatus, Side, TimeInForce
from crossbook.domain.rejects import Reject
from crossbook.gateway.http import ApiError
from crossbook.gateway.views import FillRecord, InstrumentRecord, OrderRecord
from crossbook.protocol import native as wire

_NS_PER_MS = 1_000_000
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
    scales = inst.scales
    price, quantity = scales.price.format, scales.quantity.format
    return wire.Order(
        order_id=o.order_id,
        client_order_id=o.client_order_id,
        symbol=o.symbol,
        side=wire.SIDE_NAMES[o.side],  # type: ignore[arg-type]
        type=wire.TYPE_NAMES[o.type],  # type: ignore[arg-type]
        status=wire.STATUS_NAMES[o.status],
        time_in_force=o.tif.name,  # type: ignore[arg-type]
        quantity=quantity(o.qty) if o.qty else None,
        price=price(o.price) if o.price else None,
        quote_quantity=scales.quote.format(o.quote_qty) if o.quote_qty else None,
        stop_price=price(o.stop_price) if o.stop_price else None,
        filled_quantity=quantity(o.filled),
        post_only=o.post_only,
        iceberg_quantity=quantity(o.visible_qty) if o.visible_qty else None,
        stp=wire.STP_NAMES[o.stp],  # type: ignore[arg-type]
        expire_time=ms(o.expire_ts) if o.tif is TimeInForce.GTD else None,
        created_time=ms(o.created_ts),
        updated_time=ms(o.updated_ts),
        fills=fills,
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
    record = OrderRecord(
        oid, accepted.account, accepted.symbol, accepted.side, accepted.type, accepted.tif,
        accepted.qty, accepted.price, accepted.quote_qty, accepted.stop_price,
        accepted.expire_ts, accepted.post_only, accepted.visible_qty, accepted.stp,
        accepted.client_order_id, 0, OrderStatus.NEW, accepted.working, ts, ts,
    )
    fills: list[wire.Fill] = []
    for event in events:
        if type(event) is ev.TradeExecuted:
            assert isinstance(event, ev.TradeExecuted)
            if event.taker_order_id == oid:
                record.filled, record.status = event.taker_filled, event.taker_status
                fills.append(fill(FillRecord(
                    event.trade_id, event.symbol, oid, accepted.client_order_id,
                    event.taker_side, event.price, event.qty, event.quote_qty, event.taker_fee,
                    False, ts,
                ), inst))
            elif event.maker_order_id == oid:  # a stop that triggered and then rested
                record.filled, record.status = event.maker_filled, event.maker_status
        elif isinstance(event, ev.OrderCanceled | ev.OrderExpired) and event.order_id == oid:
            record.filled, record.status = event.filled, event.status
    if accepted.type.is_market and accepted.working and record.status.is_open:
        record.status = OrderStatus.FILLED if record.filled else OrderStatus.EXPIRED
    return order(record, inst, fills)


def side_of(name: str) -> Side:
    return wire.SIDES[name]
