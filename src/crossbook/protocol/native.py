"""The native JSON API's wire schemas (`/v1`), shared by the gateway and the clients.

Conventions:
- Prices, quantities and amounts are decimal strings ("60000.00", "0.1"); integers inside
  are converted at the edge with the instrument's steps (`crossbook.protocol.decimals`).
- Enumerations are lowercase words (`buy`, `stop_limit`, `partially_filled`) except time in
  force, which keeps the trading convention (`GTC`, `IOC`, `FOK`, `GTD`).
- Times are integer milliseconds since the Unix epoch.
- Errors have one shape everywhere: `{"code": <stable int>, "message": "<what to fix>"}`.
  Codes are `crossbook.domain.rejects.Reject` values (1xxx validation, 2xxx risk, 3xxx
  matching, 4xxx admin, 10xxx gateway).
- `NewOrder` accepts `order_type` as an alias of `type` (the old system's load script sends
  `{"symbol": "BTC-USDT", "order_type": "limit", "side": "buy", "quantity": "0.1",
  "price": "60000"}`).

Pure: msgspec structs and tables only.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from crossbook.domain.enums import OrderStatus, OrderType, Side, StpMode, TimeInForce

SideName = Literal["buy", "sell"]
TypeName = Literal[
    "limit", "market", "stop_loss", "stop_limit", "take_profit", "take_profit_limit"
]
TifName = Literal["GTC", "IOC", "FOK", "GTD"]
StpName = Literal["none", "expire_taker", "expire_maker", "expire_both", "decrement"]
PermissionName = Literal["read", "trade", "admin"]

SIDES: dict[str, Side] = {"buy": Side.BUY, "sell": Side.SELL}
TYPES: dict[str, OrderType] = {
    "limit": OrderType.LIMIT,
    "market": OrderType.MARKET,
    "stop_loss": OrderType.STOP_LOSS,
    "stop_limit": OrderType.STOP_LOSS_LIMIT,
    "take_profit": OrderType.TAKE_PROFIT,
    "take_profit_limit": OrderType.TAKE_PROFIT_LIMIT,
}
TIFS: dict[str, TimeInForce] = {t.name: t for t in TimeInForce}
STPS: dict[str, StpMode] = {m.name.lower(): m for m in StpMode}
SIDE_NAMES = {v: k for k, v in SIDES.items()}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
STP_NAMES = {v: k for k, v in STPS.items()}
STATUS_NAMES = {s: s.name.lower() for s in OrderStatus}


class _In(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    pass


class NewOrder(_In, frozen=True):
    symbol: str
    side: SideName
    type: TypeName | None = None
    order_type: TypeName | None = None
    """Alias of `type`."""
    quantity: str | None = None
    quote_quantity: str | None = None
    """Market buy only: quote amount to spend."""
    price: str | None = None
    stop_price: str | None = None
    time_in_force: TifName = "GTC"
    expire_time: int | None = None
    """GTD only: milliseconds since the epoch."""
    post_only: bool = False
    iceberg_quantity: str | None = None
    """Visible quantity of an iceberg order."""
    stp: StpName = "none"
    client_order_id: str = ""


class AmendOrder(_In, frozen=True):
    quantity: str | None = None
    """New total quantity (filled part included)."""
    price: str | None = None


class Fill(msgspec.Struct, frozen=True):
    trade_id: int
    symbol: str
    order_id: int
    client_order_id: str
    side: SideName
    price: str
    quantity: str
    quote_quantity: str
    fee: str
    fee_asset: str
    liquidity: Literal["maker", "taker"]
    time: int


class Order(msgspec.Struct, frozen=True):
    order_id: int
    client_order_id: str
    symbol: str
    side: SideName
    type: TypeName
    status: str
    time_in_force: TifName
    quantity: str | None
    price: str | None
    quote_quantity: str | None
    stop_price: str | None
    filled_quantity: str
    post_only: bool
    iceberg_quantity: str | None
    stp: StpName
    expire_time: int | None
    created_time: int
    updated_time: int
    fills: list[Fill] | None = None
    """Trades made while placing (order entry only)."""


class CanceledOrders(msgspec.Struct, frozen=True):
    symbol: str
    canceled: list[int]


class Balance(msgspec.Struct, frozen=True):
    asset: str
    free: str
    locked: str


class AccountInfo(msgspec.Struct, frozen=True):
    account: int
    maker_fee_bps: int
    taker_fee_bps: int
    permissions: list[PermissionName]
    balances: list[Balance]


class InstrumentInfo(msgspec.Struct, frozen=True):
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_quantity: str
    max_quantity: str
    min_price: str
    max_price: str
    min_notional: str
    status: Literal["trading", "halted"]


class AssetInfo(msgspec.Struct, frozen=True):
    code: str
    precision: int


class Depth(msgspec.Struct, frozen=True):
    symbol: str
    last_update_id: int
    bids: list[tuple[str, str]]
    asks: list[tuple[str, str]]


class Trade(msgspec.Struct, frozen=True):
    trade_id: int
    price: str
    quantity: str
    quote_quantity: str
    taker_side: SideName
    time: int


class Ticker(msgspec.Struct, frozen=True):
    symbol: str
    open: str | None
    high: str | None
    low: str | None
    last: str | None
    volume: str
    quote_volume: str
    trade_count: int
    bid_price: str | None
    bid_quantity: str | None
    ask_price: str | None
    ask_quantity: str | None
    open_time: int
    close_time: int


class CandleInfo(msgspec.Struct, frozen=True):
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int


class ServerTime(msgspec.Struct, frozen=True):
    time: int


# -- admin ---------------------------------------------------------------------------------


class NewAccount(_In, frozen=True):
    account: int
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0


class Fees(_In, frozen=True):
    maker_fee_bps: int
    taker_fee_bps: int


class AccountSummary(msgspec.Struct, frozen=True):
    account: int
    maker_fee_bps: int
    taker_fee_bps: int


class Transfer(_In, frozen=True):
    account: int
    asset: str
    amount: str
    tx_id: str


class TransferDone(msgspec.Struct, frozen=True):
    account: int
    asset: str
    amount: str
    tx_id: str
    balance: Balance


class NewApiKey(_In, frozen=True):
    account: int
    permissions: list[PermissionName]
    label: str = ""


class ApiKeyInfo(msgspec.Struct, frozen=True):
    key: str
    account: int
    permissions: list[PermissionName]
    label: str
    secret: str | None = None
    """Only in the answer to the creation: it is never shown again."""


class NewAsset(_In, frozen=True):
    code: str
    precision: int


class NewInstrument(_In, frozen=True):
    symbol: str
    base: str
    quote: str
    tick_size: str
    lot_size: str
    min_quantity: str | None = None
    max_quantity: str | None = None
    min_price: str | None = None
    max_price: str | None = None
    min_notional: str = "0"


class ComponentStatus(msgspec.Struct, frozen=True):
    ok: bool
    detail: str


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    components: dict[str, ComponentStatus]


class Error(msgspec.Struct, frozen=True):
    code: int
    message: str
