"""The engine's mutable order record. Private to the engine; shells see `OrderView` copies.

`qty` is the total size in lots (0 for a market buy sized by `quote_qty`), `filled` what has
traded, `shown` the lots currently displayed at the order's level (an iceberg shows at most
`visible_qty` at a time), `locked` the hold still reserved for the order in its hold asset
(quote for buys, base for sells), `hold_bal` the owner's balance of that asset once the hold
is taken (None before; always that account's balance of that asset), `recv_bal` the owner's
balance of the asset its fills pay into (base for buys, quote for sells; None until the first
fill looks it up), `hold_bps` the fee rate that hold reserved, `live` whether it rests in a
level's queue, `level` that `Level` (None while it does not rest). `key` is `order_id` as one
Python int, made once: the exchange's order indexes are keyed by it, so their lookups and
deletes match by identity instead of boxing the id and comparing. `acct` and `market` are the
owner's `Account` and the symbol's `Market` (set by the exchange when it admits the order,
None before), so the hot path reaches them without a lookup by id or symbol.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from crossbook.domain.enums import OrderStatus, OrderType, Side, StpMode, TimeInForce
from crossbook.engine.accounts import Account, Balance

if TYPE_CHECKING:  # exchange.py imports this module
    from crossbook.engine.exchange import Market
    from crossbook.engine.level import Level

_NEW: Final = OrderStatus.NEW  # a module constant: an enum member read through its class is slow


class Order:
    __slots__ = (
        "account",
        "acct",
        "client_order_id",
        "expire_ts",
        "filled",
        "hold_bal",
        "hold_bps",
        "key",
        "level",
        "live",
        "locked",
        "market",
        "order_id",
        "post_only",
        "price",
        "qty",
        "quote_qty",
        "quote_spent",
        "recv_bal",
        "shown",
        "side",
        "status",
        "stop_price",
        "stp",
        "symbol",
        "tif",
        "type",
        "visible_qty",
        "working",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        symbol: str,
        side: Side,
        type: OrderType,
        qty: int,
        price: int,
        tif: TimeInForce,
        quote_qty: int,
        stop_price: int,
        expire_ts: int,
        post_only: bool,
        visible_qty: int,
        stp: StpMode,
        client_order_id: str,
    ) -> None:
        self.order_id = order_id
        self.key: Any = order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.type = type
        self.qty = qty
        self.price = price
        self.tif = tif
        self.quote_qty = quote_qty
        self.stop_price = stop_price
        self.expire_ts = expire_ts
        self.post_only = post_only
        self.visible_qty = visible_qty
        self.stp = stp
        self.client_order_id = client_order_id
        self.filled = 0
        self.quote_spent = 0
        self.shown = 0
        self.locked = 0
        self.hold_bal: Balance | None = None
        self.recv_bal: Balance | None = None
        self.acct: Account | None = None
        self.market: Market | None = None
        self.hold_bps = 0
        self.status = _NEW
        self.working = True
        self.live = False
        self.level: Level | None = None

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    def __repr__(self) -> str:
        return (
            f"Order(#{self.order_id} acct={self.account} {self.side.name} {self.type.name} "
            f"{self.filled}/{self.qty}@{self.price} shown={self.shown} {self.status.name})"
        )


class OrderView(msgspec.Struct, frozen=True):
    """A read-only copy of an open order for queries."""

    order_id: int
    account: int
    symbol: str
    side: Side
    type: OrderType
    qty: int
    price: int
    tif: TimeInForce
    quote_qty: int
    stop_price: int
    expire_ts: int
    post_only: bool
    visible_qty: int
    stp: StpMode
    client_order_id: str
    filled: int
    shown: int
    locked: int
    status: OrderStatus
    working: bool

    @classmethod
    def of(cls, o: Order) -> OrderView:
        return cls(
            o.order_id, o.account, o.symbol, o.side, o.type, o.qty, o.price, o.tif,
            o.quote_qty, o.stop_price, o.expire_ts, o.post_only, o.visible_qty, o.stp,
            o.client_order_id, o.filled, o.shown, o.locked, o.status, o.working,
        )
