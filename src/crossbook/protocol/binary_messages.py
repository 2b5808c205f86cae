"""The messages of the binary order-entry protocol, version 1, and their wire layouts.

Each message is a frozen msgspec struct; `LAYOUTS` gives its type code and the wire kind of
every field, in wire order (which is also the struct's field order). `crossbook.protocol.binary`
compiles these layouts into `struct.Struct` codecs; docs/protocol/binary.md is the prose
version of the same table, and a test keeps the two in step.

Wire kinds: `u8`/`u16`/`u32`/`u64` little-endian unsigned integers; `bool` one byte, 0 or 1;
an `IntEnum` class, one byte holding a member's value; `reject` two bytes holding a `Reject`
code (kept as a plain `int` when this version does not know the code); `asciiN` N bytes of
ASCII padded with NUL; `textN` N bytes of UTF-8 padded with NUL (longer text is cut at a
character boundary when encoded); `raw32` 32 opaque bytes.

Prices are integer ticks, sizes integer lots and amounts integer asset units, exactly as in
`crossbook.domain`; zero means "not given" where the domain command says so. Reports
(server to client, type codes 0x50 and up) start with the same four fields: session `seq`,
the `request_id` of this session's request that caused them (0 when none), the sequencer's
`ts` and the `account`.

Pure: no I/O, clock, logging or randomness.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, Union

import msgspec

from crossbook.domain.enums import (
    CloseReason,
    Liquidity,
    OrderStatus,
    OrderType,
    Side,
    StpMode,
    TimeInForce,
)
from crossbook.domain.values import AccountId, Lots, Nanos, OrderId, Ticks, TradeId, Units

PROTOCOL_VERSION: Final = 1
"""Header byte of every frame; a breaking change of any layout bumps it."""
REVISION: Final = 1
"""Announced in Login/LoginAccepted; additive changes (new types, appended fields) bump it."""
SYMBOL_SIZE: Final = 16
CLIENT_ORDER_ID_SIZE: Final = 36
API_KEY_SIZE: Final = 64
TEXT_SIZE: Final = 64

Kind = Union[str, type[IntEnum]]


class Message(msgspec.Struct, frozen=True, gc=False):
    """Base of every binary protocol message."""


# -- session (both directions unless noted) ----------------------------------------------


class Login(Message, frozen=True):
    """Client to server, first frame. `signature` is HMAC-SHA256(secret, login_payload(...))."""

    api_key: str
    timestamp: Nanos
    nonce: int
    session_id: int
    """0 opens a new session; a previous `LoginAccepted.session_id` resumes that session."""
    heartbeat_ms: int
    revision: int
    signature: bytes


class LoginAccepted(Message, frozen=True):
    """Server to client. `next_seq` is the seq the next report of this session will carry."""

    session_id: int
    account: AccountId
    next_seq: int
    heartbeat_ms: int
    revision: int


class LoginRejected(Message, frozen=True):
    """Server to client; the server closes the connection after it."""

    code: int
    message: str


class Heartbeat(Message, frozen=True):
    """Both ways. Server: the last seq it assigned; client: the last seq it received."""

    last_seq: int


class Logout(Message, frozen=True):
    """Both ways; the sender closes after it. `code` 0 is a normal logout."""

    code: int
    message: str


class ResendRequest(Message, frozen=True):
    """Client to server: send again the reports `from_seq`..`to_seq` (0: up to the latest)."""

    from_seq: int
    to_seq: int = 0


class ResendDone(Message, frozen=True):
    """Server to client, after the resent reports. `complete` is False if some were gone."""

    from_seq: int
    to_seq: int
    complete: bool


# -- requests (client to server) ----------------------------------------------------------


class NewOrder(Message, frozen=True):
    """Every option of `PlaceOrder`. `account` 0 means the session's own account."""

    request_id: int
    symbol: str
    side: Side
    type: OrderType
    qty: Lots = Lots(0)
    price: Ticks = Ticks(0)
    tif: TimeInForce = TimeInForce.GTC
    quote_qty: Units = Units(0)
    stop_price: Ticks = Ticks(0)
    expire_ts: Nanos = Nanos(0)
    post_only: bool = False
    visible_qty: Lots = Lots(0)
    stp: StpMode = StpMode.NONE
    client_order_id: str = ""
    account: AccountId = AccountId(0)


class Cancel(Message, frozen=True):
    """Cancel one order by `order_id`, or by `client_order_id` when `order_id` is 0."""

    request_id: int
    symbol: str
    order_id: OrderId = OrderId(0)
    client_order_id: str = ""
    account: AccountId = AccountId(0)


class Amend(Message, frozen=True):
    """New total `qty` and/or `price` (0 keeps it) of one order, named as for `Cancel`."""

    request_id: int
    symbol: str
    order_id: OrderId = OrderId(0)
    client_order_id: str = ""
    qty: Lots = Lots(0)
    price: Ticks = Ticks(0)
    account: AccountId = AccountId(0)


class CancelAll(Message, frozen=True):
    """Cancel every open order of the account on `symbol`."""

    request_id: int
    symbol: str
    account: AccountId = AccountId(0)


# -- execution reports (server to client, each with a session seq) ------------------------


class AcceptedReport(Message, frozen=True):
    """The order is live (or, with `working` False, a stop waiting for its trigger)."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    order_id: OrderId
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
    working: bool
    client_order_id: str


class RejectedReport(Message, frozen=True):
    """A request refused; `code` is a `Reject` value, `order_id` the order it named if any."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    order_id: OrderId
    code: int
    symbol: str
    client_order_id: str
    message: str


class FillReport(Message, frozen=True):
    """One trade of one of the session's orders. `status` FILLED marks the final fill."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    order_id: OrderId
    trade_id: TradeId
    symbol: str
    side: Side
    liquidity: Liquidity
    status: OrderStatus
    price: Ticks
    qty: Lots
    quote_qty: Units
    fee: Units
    filled: Lots
    """Cumulative filled lots of the order after this trade."""
    client_order_id: str


class CanceledReport(Message, frozen=True):
    """An order left the book: by request, cancel-all, or an admin; `filled` is cumulative."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    order_id: OrderId
    symbol: str
    reason: CloseReason
    status: OrderStatus
    filled: Lots
    client_order_id: str


class ExpiredReport(Message, frozen=True):
    """GTD expiry, IOC/FOK remainder, self-trade prevention (`status` EXPIRED_IN_MATCH)."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    order_id: OrderId
    symbol: str
    reason: CloseReason
    status: OrderStatus
    filled: Lots
    client_order_id: str


class AmendedReport(Message, frozen=True):
    """New total `qty` and `price`; `kept_priority` is True for a size decrease alone."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    order_id: OrderId
    symbol: str
    qty: Lots
    price: Ticks
    filled: Lots
    kept_priority: bool
    client_order_id: str


class TriggeredReport(Message, frozen=True):
    """A stop order's trigger price was reached; it now works as a market or limit order."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    order_id: OrderId
    symbol: str
    last_price: Ticks
    client_order_id: str


class CancelAllReport(Message, frozen=True):
    """The answer to `CancelAll`, after the `CanceledReport`s it caused."""

    seq: int
    request_id: int
    ts: Nanos
    account: AccountId
    symbol: str
    canceled: int


_REPORT_HEAD: tuple[tuple[str, Kind], ...] = (
    ("seq", "u64"),
    ("request_id", "u64"),
    ("ts", "u64"),
    ("account", "u64"),
)
_SYMBOL = ("symbol", f"ascii{SYMBOL_SIZE}")
_CLIENT_ORDER_ID = ("client_order_id", f"ascii{CLIENT_ORDER_ID_SIZE}")

# fmt: off
LAYOUTS: Final[dict[type[Message], tuple[int, tuple[tuple[str, Kind], ...]]]] = {
    Login: (0x01, (
        ("api_key", f"ascii{API_KEY_SIZE}"), ("timestamp", "u64"), ("nonce", "u64"),
        ("session_id", "u64"), ("heartbeat_ms", "u32"), ("revision", "u16"),
        ("signature", "raw32"),
    )),
    Logout: (0x02, (("code", "u16"), ("message", f"text{TEXT_SIZE}"))),
    Heartbeat: (0x03, (("last_seq", "u64"),)),
    ResendRequest: (0x04, (("from_seq", "u64"), ("to_seq", "u64"))),
    NewOrder: (0x10, (
        ("request_id", "u64"), _SYMBOL, ("side", Side), ("type", OrderType), ("qty", "u64"),
        ("price", "u64"), ("tif", TimeInForce), ("quote_qty", "u64"), ("stop_price", "u64"),
        ("expire_ts", "u64"), ("post_only", "bool"), ("visible_qty", "u64"), ("stp", StpMode),
        _CLIENT_ORDER_ID, ("account", "u64"),
    )),
    Cancel: (0x11, (
        ("request_id", "u64"), _SYMBOL, ("order_id", "u64"), _CLIENT_ORDER_ID,
        ("account", "u64"),
    )),
    Amend: (0x12, (
        ("request_id", "u64"), _SYMBOL, ("order_id", "u64"), _CLIENT_ORDER_ID, ("qty", "u64"),
        ("price", "u64"), ("account", "u64"),
    )),
    CancelAll: (0x13, (("request_id", "u64"), _SYMBOL, ("account", "u64"))),
    LoginAccepted: (0x41, (
        ("session_id", "u64"), ("account", "u64"), ("next_seq", "u64"),
        ("heartbeat_ms", "u32"), ("revision", "u16"),
    )),
    LoginRejected: (0x42, (("code", "reject"), ("message", f"text{TEXT_SIZE}"))),
    ResendDone: (0x43, (("from_seq", "u64"), ("to_seq", "u64"), ("complete", "bool"))),
    AcceptedReport: (0x50, (
        *_REPORT_HEAD, ("order_id", "u64"), _SYMBOL, ("side", Side), ("type", OrderType),
        ("qty", "u64"), ("price", "u64"), ("tif", TimeInForce), ("quote_qty", "u64"),
        ("stop_price", "u64"), ("expire_ts", "u64"), ("post_only", "bool"),
        ("visible_qty", "u64"), ("stp", StpMode), ("working", "bool"), _CLIENT_ORDER_ID,
    )),
    RejectedReport: (0x51, (
        *_REPORT_HEAD, ("order_id", "u64"), ("code", "reject"), _SYMBOL, _CLIENT_ORDER_ID,
        ("message", f"text{TEXT_SIZE}"),
    )),
    FillReport: (0x52, (
        *_REPORT_HEAD, ("order_id", "u64"), ("trade_id", "u64"), _SYMBOL, ("side", Side),
        ("liquidity", Liquidity), ("status", OrderStatus), ("price", "u64"), ("qty", "u64"),
        ("quote_qty", "u64"), ("fee", "u64"), ("filled", "u64"), _CLIENT_ORDER_ID,
    )),
    CanceledReport: (0x53, (
        *_REPORT_HEAD, ("order_id", "u64"), _SYMBOL, ("reason", CloseReason),
        ("status", OrderStatus), ("filled", "u64"), _CLIENT_ORDER_ID,
    )),
    ExpiredReport: (0x54, (
        *_REPORT_HEAD, ("order_id", "u64"), _SYMBOL, ("reason", CloseReason),
        ("status", OrderStatus), ("filled", "u64"), _CLIENT_ORDER_ID,
    )),
    AmendedReport: (0x55, (
        *_REPORT_HEAD, ("order_id", "u64"), _SYMBOL, ("qty", "u64"), ("price", "u64"),
        ("filled", "u64"), ("kept_priority", "bool"), _CLIENT_ORDER_ID,
    )),
    TriggeredReport: (0x56, (
        *_REPORT_HEAD, ("order_id", "u64"), _SYMBOL, ("last_price", "u64"), _CLIENT_ORDER_ID,
    )),
    CancelAllReport: (0x57, (*_REPORT_HEAD, _SYMBOL, ("canceled", "u32"))),
}
# fmt: on

Request = Union[NewOrder, Cancel, Amend, CancelAll]
Report = Union[
    AcceptedReport,
    RejectedReport,
    FillReport,
    CanceledReport,
    ExpiredReport,
    AmendedReport,
    TriggeredReport,
    CancelAllReport,
]
CLIENT_MESSAGES: Final[frozenset[type[Message]]] = frozenset(
    {Login, Logout, Heartbeat, ResendRequest, NewOrder, Cancel, Amend, CancelAll}
)
"""What a server accepts."""
SERVER_MESSAGES: Final[frozenset[type[Message]]] = frozenset(
    {
        LoginAccepted,
        LoginRejected,
        Logout,
        Heartbeat,
        ResendDone,
        AcceptedReport,
        RejectedReport,
        FillReport,
        CanceledReport,
        ExpiredReport,
        AmendedReport,
        TriggeredReport,
        CancelAllReport,
    }
)
"""What a client accepts."""
