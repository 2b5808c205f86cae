"""Order records, fills and acknowledgements as Binance spot JSON objects.

- `order(record, f)`: the order object of GET `/order`, `/openOrders`, `/allOrders`. A
  post-only limit order is `LIMIT_MAKER`; a market order sized by quote shows its executed
  quantity as `origQty`. No `positionSide` or `cumQuote` keys (ccxt would read them as a
  futures order).
- `placed(accepted, events, ts, f)`: the order's state right after its own command (the
  `RESULT` fields) and its taker `fills` (`FULL`), computed from that command's events.
- `trade(fill, f)`: a `myTrades` item. One trade id is shared by the public trade, both
  accounts' fills and the `fills` entry of the order response.

Commission is always charged in the quote asset (crossbook's fee model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crossbook.domain import events as ev
from crossbook.domain.enums import OrderStatus, OrderType, Side
from crossbook.gateway.binance.symbols import Formats, ms
from crossbook.gateway.views import FillRecord, OrderRecord

SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
TYPES = {
    "LIMIT": OrderType.LIMIT,
    "LIMIT_MAKER": OrderType.LIMIT,
    "MARKET": OrderType.MARKET,
    "STOP_LOSS": OrderType.STOP_LOSS,
    "STOP_LOSS_LIMIT": OrderType.STOP_LOSS_LIMIT,
    "TAKE_PROFIT": OrderType.TAKE_PROFIT,
    "TAKE_PROFIT_LIMIT": OrderType.TAKE_PROFIT_LIMIT,
}


def type_name(record: OrderRecord) -> str:
    if record.type is OrderType.LIMIT and record.post_only:
        return "LIMIT_MAKER"
    return record.type.name


def quote_filled(record: OrderRecord, f: Formats) -> int:
    """Quote traded; for an order seeded at recovery, its limit price times its fills."""
    if record.quote_filled or not record.filled:
        return record.quote_filled
    return f.record.instrument.notional(record.price, record.filled) if record.price else 0


def _status(status: OrderStatus) -> str:
    return status.name


def _core(record: OrderRecord, f: Formats) -> dict[str, Any]:
    return {
        "symbol": f.name,
        "orderId": record.order_id,
        "orderListId": -1,
        "clientOrderId": record.client_order_id,
    }


def _result(record: OrderRecord, f: Formats) -> dict[str, Any]:
    return {
        "price": f.price(record.price),
        "origQty": f.qty(record.qty or record.filled),
        "executedQty": f.qty(record.filled),
        "cummulativeQuoteQty": f.quote(quote_filled(record, f)),
        "status": _status(record.status),
        "timeInForce": record.tif.name,
        "type": type_name(record),
        "side": record.side.name,
    }


def order(record: OrderRecord, f: Formats) -> dict[str, Any]:
    created = ms(record.created_ts)
    return {
        **_core(record, f),
        **_result(record, f),
        "stopPrice": f.price(record.stop_price),
        "icebergQty": f.qty(record.visible_qty),
        "time": created,
        "updateTime": ms(record.updated_ts),
        "isWorking": record.working,
        "workingTime": created if record.working else -1,
        "origQuoteOrderQty": f.quote(record.quote_qty),
        "selfTradePreventionMode": record.stp.name,
    }


def canceled(record: OrderRecord, f: Formats, cancel_id: str, ts: int) -> dict[str, Any]:
    return {
        "symbol": f.name,
        "origClientOrderId": record.client_order_id,
        "orderId": record.order_id,
        "orderListId": -1,
        "clientOrderId": cancel_id,
        "transactTime": ms(ts),
        **_result(record, f),
        "origQuoteOrderQty": f.quote(record.quote_qty),
        "selfTradePreventionMode": record.stp.name,
    }


@dataclass(slots=True)
class Placed:
    record: OrderRecord
    fills: list[dict[str, Any]]


def placed(accepted: ev.OrderAccepted, events: list[ev.Event], ts: int, f: Formats) -> Placed:
    """The order's state after its own command, with the fills it took."""
    oid = accepted.order_id
    record = OrderRecord(
        oid, accepted.account, accepted.symbol, accepted.side, accepted.type, accepted.tif,
        accepted.qty, accepted.price, accepted.quote_qty, accepted.stop_price,
        accepted.expire_ts, accepted.post_only, accepted.visible_qty, accepted.stp,
        accepted.client_order_id, 0, OrderStatus.NEW, accepted.working, ts, ts,
    )
    fills: list[dict[str, Any]] = []
    for event in events:
        if type(event) is ev.TradeExecuted:
            assert isinstance(event, ev.TradeExecuted)
            if event.taker_order_id == oid:
                record.filled, record.status = event.taker_filled, event.taker_status
                record.quote_filled += event.quote_qty
                fills.append({
                    "price": f.price(event.price), "qty": f.qty(event.qty),
                    "commission": f.quote(event.taker_fee),
                    "commissionAsset": f.record.instrument.quote, "tradeId": event.trade_id,
                })
            elif event.maker_order_id == oid:  # a stop that triggered, rested, then traded
                record.filled, record.status = event.maker_filled, event.maker_status
                record.quote_filled += event.quote_qty
        elif isinstance(event, ev.OrderCanceled | ev.OrderExpired) and event.order_id == oid:
            record.filled, record.status = event.filled, event.status
        elif isinstance(event, ev.OrderTriggered) and event.order_id == oid:
            record.working = True
    if record.type.is_market and record.working and record.status.is_open:
        record.status = OrderStatus.FILLED if record.filled else OrderStatus.EXPIRED
    return Placed(record, fills)


def acknowledgement(placed: Placed, f: Formats, ts: int, kind: str) -> dict[str, Any]:
    """The POST /order answer for `newOrderRespType` ACK, RESULT or FULL."""
    record = placed.record
    out = {**_core(record, f), "transactTime": ms(ts)}
    if kind == "ACK":
        return out
    out.update(_result(record, f))
    out["origQuoteOrderQty"] = f.quote(record.quote_qty)
    out["workingTime"] = ms(ts) if record.working else -1
    out["selfTradePreventionMode"] = record.stp.name
    if record.stop_price:
        out["stopPrice"] = f.price(record.stop_price)
    if record.visible_qty:
        out["icebergQty"] = f.qty(record.visible_qty)
    if kind == "FULL":
        out["fills"] = placed.fills
    return out


def trade(fill: FillRecord, f: Formats) -> dict[str, Any]:
    return {
        "symbol": f.name,
        "id": fill.trade_id,
        "orderId": fill.order_id,
        "orderListId": -1,
        "price": f.price(fill.price),
        "qty": f.qty(fill.qty),
        "quoteQty": f.quote(fill.quote_qty),
        "commission": f.quote(fill.fee),
        "commissionAsset": f.record.instrument.quote,
        "time": ms(fill.ts),
        "isBuyer": fill.side is Side.BUY,
        "isMaker": fill.maker,
        "isBestMatch": True,
    }
