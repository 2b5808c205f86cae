"""The native WebSocket API (`/v1/ws`): message schemas shared by the gateway and clients.

Every client message is one JSON object with an `op` and an optional `id` (any JSON value,
echoed unchanged in the reply). Replies are `{"id": .., "result": ..}` or
`{"id": .., "error": {"code": <Reject>, "message": ".."}}`; a bad message gets an error reply
and the connection stays open.

Market data (no login):
- `{"op":"subscribe","id":1,"channel":"depth","symbol":"BTC-USDT","speed":"100ms"}`: replies
  `{"id":1,"result":"subscribed"}`, then a `DepthMessage` of type `snapshot`, then `update`s
  whose `first_update_id` is the previous `last_update_id + 1`. A `snapshot` with
  `resync: true` replaces the book (sent after a slow client's queued diffs were conflated).
  `speed` is `realtime` (one update per durable batch, the default) or `100ms`.
- channels `trades`, `book_ticker`, `ticker`, `candles` (with `interval`, e.g. `1m`).
- `{"op":"unsubscribe",...}` with the same fields; `{"op":"ping"}` answers `"pong"`.

Account (after `login`):
- `{"op":"login","id":..,"key":"..","timestamp":ms,"signature":hex}` where `signature` is the
  native HMAC over `timestamp + "GET" + "/v1/ws"` with an empty body.
- `{"op":"subscribe","channel":"user"}`: `OrderEvent` and `BalanceEvent` messages.
- `{"op":"place","id":..,"order":{NewOrder}}` → the `Order` after the command is durable;
  `cancel` (`symbol` + `order_id` or `client_order_id`), `amend` (+ `quantity`/`price`),
  `cancel_all` (`symbol`). Requests may be pipelined; replies come in durable order.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from crossbook.protocol.native import NewOrder

Channel = Literal["depth", "trades", "book_ticker", "ticker", "candles", "user"]
Op = Literal[
    "subscribe", "unsubscribe", "login", "place", "cancel", "amend", "cancel_all", "ping"
]


class Request(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    op: Op
    id: Any = None
    channel: Channel | None = None
    symbol: str | None = None
    speed: Literal["realtime", "100ms"] = "realtime"
    interval: str | None = None
    key: str | None = None
    timestamp: int | None = None
    signature: str | None = None
    order: NewOrder | None = None
    order_id: int | None = None
    client_order_id: str | None = None
    quantity: str | None = None
    price: str | None = None


class Error(msgspec.Struct, frozen=True):
    code: int
    message: str


class Reply(msgspec.Struct, frozen=True, omit_defaults=True):
    id: Any = None
    result: Any = None
    error: Error | None = None


Levels = list[tuple[str, str]]


class DepthMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    channel: Literal["depth"]
    symbol: str
    type: Literal["snapshot", "update"]
    last_update_id: int
    bids: Levels
    asks: Levels
    first_update_id: int = 0
    """Updates only: the first update id covered."""
    time: int = 0
    resync: bool = False
    """Snapshots only: queued updates were dropped; replace the local book."""


class TradeMessage(msgspec.Struct, frozen=True):
    channel: Literal["trades"]
    symbol: str
    trade_id: int
    price: str
    quantity: str
    quote_quantity: str
    taker_side: Literal["buy", "sell"]
    time: int


class BookTickerMessage(msgspec.Struct, frozen=True):
    channel: Literal["book_ticker"]
    symbol: str
    update_id: int
    bid_price: str | None
    bid_quantity: str | None
    ask_price: str | None
    ask_quantity: str | None


class CandleMessage(msgspec.Struct, frozen=True):
    channel: Literal["candles"]
    symbol: str
    interval: str
    open_time: int
    close_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trade_count: int
    closed: bool


class TickerMessage(msgspec.Struct, frozen=True):
    channel: Literal["ticker"]
    symbol: str
    open: str | None
    high: str | None
    low: str | None
    last: str | None
    volume: str
    quote_volume: str
    trade_count: int
    open_time: int
    close_time: int


class OrderEvent(msgspec.Struct, frozen=True):
    """One change of one of the signed-in account's orders."""

    channel: Literal["orders"]
    event: Literal["accepted", "trade", "canceled", "expired", "amended", "triggered"]
    order_id: int
    client_order_id: str
    symbol: str
    status: str
    filled_quantity: str
    time: int
    trade_id: int | None = None
    price: str | None = None
    """Trade price for `trade`, the order's price otherwise."""
    quantity: str | None = None
    """Trade quantity for `trade`, the order's quantity otherwise."""
    fee: str | None = None
    liquidity: Literal["maker", "taker"] | None = None


class BalanceEvent(msgspec.Struct, frozen=True):
    channel: Literal["balances"]
    time: int
    balances: list[tuple[str, str, str]]
    """`(asset, free, locked)` for each asset the batch changed."""
