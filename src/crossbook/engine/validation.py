"""Stateless checks of a PlaceOrder against its instrument: shape, grid and bounds.

Returns `None` when the order is well formed, else `(Reject, message)`. Checks that need the
book or balances (funds, post-only, FOK, liquidity, stop trigger) live in the exchange, which
also passes the plain GTC limit order on the grid without calling `check_order`.
"""

from __future__ import annotations

import re

from crossbook.domain.commands import PlaceOrder
from crossbook.domain.enums import OrderType, Side, TimeInForce
from crossbook.domain.instruments import Instrument
from crossbook.domain.rejects import Reject

Problem = tuple[Reject, str] | None

CLIENT_ORDER_ID = re.compile(r"[.A-Za-z0-9:/_-]{1,36}")
_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LOSS_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
_FIRST_STOP = int(OrderType.STOP_LOSS)
_MAX_AMOUNT = 2**62
_GTD, _IOC, _FOK = TimeInForce.GTD, TimeInForce.IOC, TimeInForce.FOK


def check_client_order_id(client_order_id: str) -> Problem:
    if client_order_id and not CLIENT_ORDER_ID.fullmatch(client_order_id):
        return Reject.INVALID_CLIENT_ORDER_ID, "client order id must be 1-36 of [.A-Za-z0-9:/_-]"
    return None


def check_price(inst: Instrument, price: int) -> Problem:
    if price <= 0:
        return Reject.INVALID_PRICE, "price must be positive"
    if not inst.min_price <= price <= inst.max_price:
        return Reject.PRICE_OUT_OF_BOUNDS, "price outside the instrument's bounds"
    return None


def check_qty(inst: Instrument, qty: int) -> Problem:
    if qty <= 0:
        return Reject.INVALID_QUANTITY, "quantity must be positive"
    if not inst.min_qty <= qty <= inst.max_qty:
        return Reject.QUANTITY_OUT_OF_BOUNDS, "quantity outside the instrument's bounds"
    return None


def check_order(c: PlaceOrder, inst: Instrument, ts: int) -> Problem:
    problem = check_client_order_id(c.client_order_id)
    if problem:
        return problem
    typ = c.type
    limit_priced = typ in _LIMIT_TYPES
    is_stop = typ >= _FIRST_STOP
    if limit_priced:
        problem = check_price(inst, c.price)
    elif c.price:
        problem = Reject.INVALID_ORDER_PARAMETERS, "market orders take no price"
    if problem:
        return problem
    if is_stop:
        problem = check_price(inst, c.stop_price)
        if problem:
            return problem[0], "stop price: " + problem[1]
    elif c.stop_price:
        return Reject.INVALID_ORDER_PARAMETERS, "only stop and take-profit orders take a stop price"
    if c.quote_qty:
        if not typ.is_market or c.side is Side.SELL or c.qty:
            return Reject.INVALID_ORDER_PARAMETERS, "quote quantity is for market buys only"
        if not 0 < c.quote_qty <= _MAX_AMOUNT:
            return Reject.INVALID_QUANTITY, "quote quantity must be positive and below 2**62"
        if c.quote_qty < inst.min_notional:
            return Reject.BELOW_MIN_NOTIONAL, "quote quantity below the minimum notional"
        if c.tif is TimeInForce.FOK:
            return Reject.INVALID_ORDER_PARAMETERS, "FOK needs a base quantity"
    else:
        problem = check_qty(inst, c.qty)
        if problem:
            return problem
        if limit_priced and inst.notional(c.price, c.qty) < inst.min_notional:
            return Reject.BELOW_MIN_NOTIONAL, "notional below the instrument's minimum"
    tif = c.tif
    if tif is _GTD:
        if not limit_priced:
            return Reject.INVALID_ORDER_PARAMETERS, "GTD is for limit orders"
        if c.expire_ts <= ts:
            return Reject.INVALID_EXPIRE_TIME, "expire time must be in the future"
    elif c.expire_ts:
        return Reject.INVALID_ORDER_PARAMETERS, "an expire time needs time in force GTD"
    if c.post_only and (typ is not OrderType.LIMIT or tif in (_IOC, _FOK)):
        return Reject.INVALID_ORDER_PARAMETERS, "post-only is for GTC or GTD limit orders"
    if c.visible_qty:
        if not limit_priced or tif in (_IOC, _FOK):
            return Reject.INVALID_ORDER_PARAMETERS, "iceberg is for GTC or GTD limit orders"
        if not 0 < c.visible_qty < c.qty or c.visible_qty < inst.min_qty:
            return Reject.INVALID_QUANTITY, "iceberg visible quantity must be below the total"
    return None
