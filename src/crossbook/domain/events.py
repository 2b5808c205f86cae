"""Events: what happened, named in the past tense. `Exchange.apply` returns them in order.

Every event of one command shares that command's `(seq, ts)`, which travel beside the list,
not inside each event; `(seq, index)` identifies an event for idempotent consumers.

Order events carry the order's cumulative `filled` and resulting `status` so that a consumer
(user stream, history) needs no state of its own to report an order. `BalanceChanged` gives
absolute `free` and `locked` after the command, once per touched (account, asset).
"""

from __future__ import annotations

from typing import Union

import msgspec

from crossbook.domain.enums import (
    CloseReason,
    OrderStatus,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
)
from crossbook.domain.instruments import Asset, Instrument
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, Nanos, OrderId, Ticks, TradeId, Units


class _Event(msgspec.Struct, frozen=True, array_like=True, gc=False, tag_field="t"):
    pass


class OrderAccepted(_Event, frozen=True, tag="oa"):
    order_id: OrderId
    account: AccountId
    symbol: str
    side: Side
    type: OrderType
    qty: Lots
    price: Ticks
    tif: TimeInForce
    quote_qty: Units
    stop_price: Ticks
    expire_ts: Nanos
    post_only: bool
    visible_qty: Lots
    stp: StpMode
    client_order_id: str
    working: bool
    """False for a stop order waiting for its trigger."""


class OrderRejected(_Event, frozen=True, tag="or"):
    account: AccountId
    symbol: str
    client_order_id: str
    code: Reject
    message: str
    order_id: OrderId = OrderId(0)
    """The order a cancel or amend named, or the existing order of a duplicate client id."""


class TradeExecuted(_Event, frozen=True, tag="te"):
    trade_id: TradeId
    symbol: str
    price: Ticks
    qty: Lots
    quote_qty: Units
    taker_side: Side
    maker_order_id: OrderId
    maker_account: AccountId
    maker_fee: Units
    maker_filled: Lots
    maker_status: OrderStatus
    taker_order_id: OrderId
    taker_account: AccountId
    taker_fee: Units
    taker_filled: Lots
    taker_status: OrderStatus
    maker_client_order_id: str = ""
    taker_client_order_id: str = ""


class OrderCanceled(_Event, frozen=True, tag="oc"):
    order_id: OrderId
    account: AccountId
    symbol: str
    client_order_id: str
    reason: CloseReason
    filled: Lots
    status: OrderStatus = OrderStatus.CANCELED


class OrderExpired(_Event, frozen=True, tag="ox"):
    order_id: OrderId
    account: AccountId
    symbol: str
    client_order_id: str
    reason: CloseReason
    filled: Lots
    status: OrderStatus
    """EXPIRED, or EXPIRED_IN_MATCH when self-trade prevention removed it."""


class OrderAmended(_Event, frozen=True, tag="om"):
    order_id: OrderId
    account: AccountId
    symbol: str
    client_order_id: str
    qty: Lots
    price: Ticks
    filled: Lots
    kept_priority: bool


class OrderTriggered(_Event, frozen=True, tag="ot"):
    order_id: OrderId
    account: AccountId
    symbol: str
    client_order_id: str
    last_price: Ticks


class BalanceChanged(_Event, frozen=True, tag="bc"):
    account: AccountId
    asset: str
    free: Units
    locked: Units


class DepthChanged(_Event, frozen=True, tag="dc"):
    """The aggregated levels one command changed on a symbol's book, after the command.

    Each entry is `(price, visible_qty, order_count)`; a qty of 0 means the level is gone.
    `update_id` is the symbol's book counter: it grows by exactly one per command that changed
    the book, so consumers detect gaps (`update_id == previous + 1`).
    """

    symbol: str
    update_id: int
    bids: list[tuple[int, int, int]]
    asks: list[tuple[int, int, int]]


class FundsDeposited(_Event, frozen=True, tag="fd"):
    account: AccountId
    asset: str
    amount: Units
    tx_id: str


class FundsWithdrawn(_Event, frozen=True, tag="fw"):
    account: AccountId
    asset: str
    amount: Units
    tx_id: str


class AccountCreated(_Event, frozen=True, tag="nc"):
    account: AccountId
    maker_fee_bps: int
    taker_fee_bps: int


class FeesChanged(_Event, frozen=True, tag="fc"):
    account: AccountId
    maker_fee_bps: int
    taker_fee_bps: int


class AssetAdded(_Event, frozen=True, tag="na"):
    asset: Asset


class InstrumentAdded(_Event, frozen=True, tag="ni"):
    instrument: Instrument


class TradingHalted(_Event, frozen=True, tag="th"):
    symbol: str


class TradingResumed(_Event, frozen=True, tag="tr"):
    symbol: str


class ApiKeyCreated(_Event, frozen=True, tag="kc"):
    """The secret stays in the journaled command; events never carry it."""

    key: str
    account: AccountId
    permissions: int
    label: str


class ApiKeyRevoked(_Event, frozen=True, tag="kr"):
    key: str
    account: AccountId


Event = Union[
    OrderAccepted,
    OrderRejected,
    TradeExecuted,
    OrderCanceled,
    OrderExpired,
    OrderAmended,
    OrderTriggered,
    BalanceChanged,
    DepthChanged,
    FundsDeposited,
    FundsWithdrawn,
    AccountCreated,
    FeesChanged,
    AssetAdded,
    InstrumentAdded,
    TradingHalted,
    TradingResumed,
    ApiKeyCreated,
    ApiKeyRevoked,
]
