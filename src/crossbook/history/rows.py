"""Events to table rows: the pure half of the history projector.

Contract:
- `build(batch, state)` turns durable `Applied` records into `Rows` for one transaction. It
  never mutates `state`; the changes it implies (balances, instruments) come back in
  `Rows.balances` / `Rows.instruments` and the caller folds them in with `State.commit` only
  after the transaction committed, so a failed write leaves the projector exactly where it was.
- Every event is identified by `(seq, idx)`, `idx` being its position in its command's event
  list; a trade touches two orders and two accounts, told apart by `leg` (0 maker, 1 taker).
- Append-only tables get one row per event (order state changes, trades, fills, ledger).
  An order's acceptance and its trades are not repeated in `order_events`: the order's row
  keeps where and as what it was accepted (`ORDER_ROW_COLUMNS`: `accepted_idx`,
  `accepted_price`, `accepted_qty`) and each fill the order's status and filled quantity
  after it (`FILL_ROW_COLUMNS`: `order_status`, `order_filled`), so `queries.order_events`
  serves the whole history from the three tables with a third fewer rows to write.
  Current-state tables (orders, balances, candles) get one row per key per batch, collapsed
  here so that the store does one set-based upsert.
- `OrderChange` uses sentinels for "unchanged": status 0, filled -1, price 0, qty 0.
- Fees are in the instrument's quote asset (holds reserve notional plus fee in quote).
- Candles are one-minute buckets of trades keyed by the bucket's start in nanoseconds; longer
  intervals are aggregated from them at query time. Their taker-buy volumes sum the trades
  whose taker bought.

All values are integers (ticks, lots, asset units, nanoseconds) and fit in a signed 64-bit
column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Final, cast

from msgspec.structs import astuple

from crossbook.domain.commands import AmendOrder, CancelOrder, Command, Deposit, Withdraw
from crossbook.domain.enums import Liquidity, OrderStatus, Side
from crossbook.domain.events import (
    BalanceChanged,
    DepthChanged,
    Event,
    InstrumentAdded,
    OrderAccepted,
    OrderAmended,
    OrderCanceled,
    OrderExpired,
    OrderRejected,
    OrderTriggered,
    TradeExecuted,
)
from crossbook.sequencer.ports import Applied

CANDLE_NS = 60_000_000_000
"""Width of a stored candle: one minute in nanoseconds."""


class OrderEventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    TRADE = 3
    CANCELED = 4
    EXPIRED = 5
    AMENDED = 6
    TRIGGERED = 7


ORDER_COLUMNS = (
    "order_id", "account", "symbol", "side", "type", "tif", "price", "qty", "quote_qty",
    "stop_price", "expire_ts", "post_only", "visible_qty", "stp", "client_order_id",
    "status", "filled", "created_seq", "created_ts", "updated_seq", "updated_ts",
)  # fmt: skip
ORDER_ROW_COLUMNS = (*ORDER_COLUMNS, "accepted_idx", "accepted_price", "accepted_qty")
"""An order's stored row: its latest state (`ORDER_COLUMNS`) and how it was accepted."""
ORDER_UPDATE_COLUMNS = ("symbol", "order_id", "status", "filled", "price", "qty", "seq", "ts")
ORDER_EVENT_COLUMNS = (
    "seq", "idx", "leg", "ts", "order_id", "account", "symbol", "kind", "status", "filled",
    "price", "qty", "trade_id", "detail",
)  # fmt: skip
TRADE_COLUMNS = (
    "trade_id", "seq", "idx", "ts", "symbol", "price", "qty", "quote_qty", "taker_side",
    "maker_order_id", "maker_account", "maker_fee", "taker_order_id", "taker_account",
    "taker_fee",
)  # fmt: skip
FILL_COLUMNS = (
    "seq", "idx", "leg", "ts", "trade_id", "account", "order_id", "symbol", "side",
    "liquidity", "price", "qty", "quote_qty", "fee", "fee_asset",
)  # fmt: skip
FILL_ROW_COLUMNS = (*FILL_COLUMNS, "order_status", "order_filled")
"""A fill's stored row: the fill (`FILL_COLUMNS`) and its order's state right after it."""
LEDGER_COLUMNS = (
    "seq", "idx", "ts", "account", "asset", "free", "locked", "delta_free", "delta_locked",
    "cause", "ref",
)  # fmt: skip
BALANCE_COLUMNS = ("account", "asset", "free", "locked", "seq")
CANDLE_COLUMNS = (
    "symbol", "open_ts", "open", "high", "low", "close", "volume", "quote_volume", "trades",
    "first_trade_id", "last_trade_id", "taker_buy_volume", "taker_buy_quote_volume",
)  # fmt: skip
INSTRUMENT_COLUMNS = (
    "symbol", "base", "quote", "tick_size", "lot_size", "base_precision", "quote_precision",
    "lot_units", "notional_units", "seq",
)  # fmt: skip

Row = tuple[int | str, ...] | list[int | str]
"""A row's values in its table's column order: a tuple, or for rows folded while the chunk
was built (orders, order changes, candles) the list they were folded into."""
_NEW = int(OrderStatus.NEW)


@dataclass
class State:
    """What the projector remembers between batches: last balances and instruments' quotes."""

    last_seq: int = 0
    balances: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    quotes: dict[str, str] = field(default_factory=dict)

    def commit(self, rows: Rows) -> None:
        for account, asset, free, locked, _seq in rows.balances:
            self.balances[(int(account), str(asset))] = (int(free), int(locked))
        for instrument in rows.instruments:
            self.quotes[str(instrument[0])] = str(instrument[2])
        self.last_seq = max(self.last_seq, rows.last_seq)


@dataclass
class Rows:
    """One transaction's worth of rows, in the column orders declared above."""

    first_seq: int = 0
    last_seq: int = 0
    prev_seq: int = 0
    """The last sequence the rows were built upon (`state.last_seq`): the database must hold
    exactly that for the write to apply."""
    events: int = 0
    orders: list[Row] = field(default_factory=list)
    """In `ORDER_ROW_COLUMNS` order (fills: `FILL_ROW_COLUMNS`)."""
    order_updates: list[Row] = field(default_factory=list)
    order_events: list[Row] = field(default_factory=list)
    trades: list[Row] = field(default_factory=list)
    fills: list[Row] = field(default_factory=list)
    ledger: list[Row] = field(default_factory=list)
    balances: list[Row] = field(default_factory=list)
    candles: list[Row] = field(default_factory=list)
    instruments: list[Row] = field(default_factory=list)


_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_CAUSES: dict[type, str] = {}


def cause_of(command: Command) -> str:
    """The ledger's cause: the command's name in snake case (`place_order`, `deposit`)."""
    kind = type(command)
    cause = _CAUSES.get(kind)
    if cause is None:
        cause = _CAUSES[kind] = _CAMEL.sub("_", kind.__name__).lower()
    return cause


_REF_EVENTS: Final = frozenset({OrderAccepted, OrderCanceled, OrderAmended})
_INT: Final = tuple(range(64))
"""`_INT[member]` is the plain int of a small IntEnum member (or bool): a tuple index, where
`int(member)` is a call. Rows hold plain ints only."""
_OPPOSITE: Final = (0, int(Side.SELL), int(Side.BUY))
_MAKER: Final = int(Liquidity.MAKER)
_TAKER: Final = int(Liquidity.TAKER)
_BUY: Final = int(Side.BUY)
# Enum members read once: on CPython 3.11 `Enum.MEMBER` goes through the metaclass's
# attribute hook, about 40 times the cost of a module global.
_CANCELED: Final = int(OrderEventKind.CANCELED)
_EXPIRED: Final = int(OrderEventKind.EXPIRED)
_AMENDED: Final = int(OrderEventKind.AMENDED)
_TRIGGERED: Final = int(OrderEventKind.TRIGGERED)
_REJECTED_EVENT: Final = int(OrderEventKind.REJECTED)
_FILLED: Final = int(OrderStatus.FILLED)
_PARTIALLY_FILLED: Final = int(OrderStatus.PARTIALLY_FILLED)
_REJECTED: Final = int(OrderStatus.REJECTED)


def _ref_of(command: Command, events: list[Event]) -> str:
    kind = type(command)
    if kind is Deposit or kind is Withdraw:
        return cast("Deposit | Withdraw", command).tx_id
    if kind is CancelOrder or kind is AmendOrder:
        order_id = cast("CancelOrder | AmendOrder", command).order_id
        if order_id:
            return str(order_id)
    for event in events:
        if type(event) in _REF_EVENTS:
            return str(cast("OrderAccepted | OrderCanceled | OrderAmended", event).order_id)
    return ""


class _Builder:
    """Accumulates one transaction's rows. New orders, order changes and candles stay mutable
    lists (in their columns' order) until `finish`, so that later events of the chunk fold
    into them."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.rows = Rows()
        self.new_orders: dict[tuple[str, int], list[int | str]] = {}
        self.changes: dict[tuple[str, int], list[int | str]] = {}
        self.balances: dict[tuple[int, str], tuple[int, int, int]] = {}
        self.candles: dict[tuple[str, int], list[int | str]] = {}
        self.quotes: dict[str, str] = {}

    def quote(self, symbol: str) -> str:
        return self.quotes.get(symbol) or self.state.quotes.get(symbol, "")

    def change(self, seq: int, ts: int, key: tuple[str, int], status: int, filled: int,
               price: int, qty: int) -> None:  # fmt: skip
        """Fold `(status, filled, price, qty)` (with "unchanged" sentinels) into the order."""
        new = self.new_orders.get(key)
        if new is not None:
            if status:
                new[15] = status
            if filled >= 0:
                new[16] = filled
            if price:
                new[6] = price
            if qty:
                new[7] = qty
            new[19] = seq
            new[20] = ts
            return
        new = self.changes.get(key)
        if new is None:
            self.changes[key] = [key[0], key[1], status, filled, price, qty, seq, ts]
            return
        if status:
            new[2] = status
        if filled >= 0:
            new[3] = filled
        if price:
            new[4] = price
        if qty:
            new[5] = qty
        new[6] = seq
        new[7] = ts

    def add(self, applied: Applied) -> None:
        # The hot path: accepted orders, balance changes and trades are inlined (most events).
        seq, ts = applied.seq, applied.ts
        rows = self.rows
        ledger = rows.ledger
        balances, stored, new_orders = self.balances, self.state.balances, self.new_orders
        cause: tuple[str, str] | None = None
        idx = -1
        for e in applied.events:
            idx += 1
            kind = type(e)
            if kind is BalanceChanged:
                assert isinstance(e, BalanceChanged)
                if cause is None:
                    cause = cause_of(applied.command), _ref_of(applied.command, applied.events)
                account, asset, free, locked = e.account, e.asset, e.free, e.locked
                key = (account, asset)
                previous = balances.get(key)
                if previous is None:
                    free0, locked0 = stored.get(key, (0, 0))
                else:
                    free0, locked0, _ = previous
                balances[key] = (free, locked, seq)
                ledger.append((
                    seq, idx, ts, account, asset, free, locked, free - free0, locked - locked0,
                    cause[0], cause[1],
                ))  # fmt: skip
            elif kind is OrderAccepted:
                assert isinstance(e, OrderAccepted)
                order_id, account, symbol = e.order_id, e.account, e.symbol
                price, qty = e.price, e.qty
                new_orders[(symbol, order_id)] = [
                    order_id, account, symbol, _INT[e.side], _INT[e.type], _INT[e.tif], price,
                    qty, e.quote_qty, e.stop_price, e.expire_ts, _INT[e.post_only],
                    e.visible_qty, _INT[e.stp], e.client_order_id, _NEW, 0, seq, ts, seq, ts,
                    idx, price, qty,
                ]  # fmt: skip
            elif kind is TradeExecuted:
                assert isinstance(e, TradeExecuted)
                self.trade(seq, idx, ts, e)
            elif kind is not DepthChanged:
                self.other(seq, idx, ts, e)

    def trade(self, seq: int, idx: int, ts: int, e: TradeExecuted) -> None:
        rows = self.rows
        (trade_id, symbol, price, qty, quote_qty, taker_side, maker_order_id, maker_account,
         maker_fee, maker_filled, maker_status, taker_order_id, taker_account, taker_fee,
         taker_filled, taker_status) = astuple(e)[:16]  # fmt: skip
        side = _INT[taker_side]
        rows.trades.append((
            trade_id, seq, idx, ts, symbol, price, qty, quote_qty, side, maker_order_id,
            maker_account, maker_fee, taker_order_id, taker_account, taker_fee,
        ))  # fmt: skip
        fee_asset = self.quotes.get(symbol) or self.state.quotes.get(symbol, "")
        maker_status, taker_status = _INT[maker_status], _INT[taker_status]
        fills = rows.fills
        fills.append((
            seq, idx, 0, ts, trade_id, maker_account, maker_order_id, symbol, _OPPOSITE[side],
            _MAKER, price, qty, quote_qty, maker_fee, fee_asset, maker_status, maker_filled,
        ))  # fmt: skip
        fills.append((
            seq, idx, 1, ts, trade_id, taker_account, taker_order_id, symbol, side, _TAKER,
            price, qty, quote_qty, taker_fee, fee_asset, taker_status, taker_filled,
        ))  # fmt: skip
        self.change(seq, ts, (symbol, maker_order_id), maker_status, maker_filled, 0, 0)
        self.change(seq, ts, (symbol, taker_order_id), taker_status, taker_filled, 0, 0)
        bucket = ts - ts % CANDLE_NS
        candle = self.candles.get((symbol, bucket))
        taker_buy = side == _BUY
        if candle is None:
            self.candles[(symbol, bucket)] = [
                symbol, bucket, price, price, price, price, qty, quote_qty, 1, trade_id,
                trade_id, qty if taker_buy else 0, quote_qty if taker_buy else 0,
            ]  # fmt: skip
            return
        candle[3] = max(int(candle[3]), price)
        candle[4] = min(int(candle[4]), price)
        candle[5] = price
        candle[6] = int(candle[6]) + qty
        candle[7] = int(candle[7]) + quote_qty
        candle[8] = int(candle[8]) + 1
        candle[10] = trade_id
        if taker_buy:
            candle[11] = int(candle[11]) + qty
            candle[12] = int(candle[12]) + quote_qty

    def order_event(
        self, at: tuple[int, int, int], order: tuple[int, int, str], kind: int,
        values: tuple[int, int, int, int, int, int],
    ) -> None:  # fmt: skip
        """One leg-0 order event: `at` is (seq, idx, ts), `order` (order_id, account,
        symbol), `kind` an `OrderEventKind` as int, `values` (status, filled, price, qty,
        trade_id, detail)."""
        seq, idx, ts = at
        self.rows.order_events.append((seq, idx, 0, ts, *order, kind, *values))

    def other(self, seq: int, idx: int, ts: int, e: Event) -> None:
        at = (seq, idx, ts)
        if isinstance(e, OrderCanceled | OrderExpired):
            canceled = isinstance(e, OrderCanceled)
            kind = _CANCELED if canceled else _EXPIRED
            self.change(seq, ts, (e.symbol, e.order_id), int(e.status), e.filled, 0, 0)
            self.order_event(at, (e.order_id, e.account, e.symbol), kind,
                             (int(e.status), e.filled, 0, 0, 0, int(e.reason)))  # fmt: skip
        elif isinstance(e, OrderAmended):
            status = (
                _FILLED if e.filled >= e.qty else _PARTIALLY_FILLED if e.filled else _NEW
            )
            self.change(seq, ts, (e.symbol, e.order_id), status, e.filled, e.price, e.qty)
            self.order_event(
                at, (e.order_id, e.account, e.symbol), _AMENDED,
                (status, e.filled, e.price, e.qty, 0, int(e.kept_priority)),
            )  # fmt: skip
        elif isinstance(e, OrderTriggered):
            self.change(seq, ts, (e.symbol, e.order_id), 0, -1, 0, 0)
            self.order_event(at, (e.order_id, e.account, e.symbol),
                             _TRIGGERED, (0, -1, e.last_price, 0, 0, 0))  # fmt: skip
        elif isinstance(e, OrderRejected):
            self.order_event(at, (e.order_id, e.account, e.symbol),
                             _REJECTED_EVENT, (_REJECTED, 0, 0, 0, 0, int(e.code)))  # fmt: skip
        elif isinstance(e, InstrumentAdded):
            i = e.instrument
            self.quotes[i.symbol] = i.quote
            self.rows.instruments.append((
                i.symbol, i.base, i.quote, i.tick_size, i.lot_size, i.base_precision,
                i.quote_precision, i.lot_units, i.notional_units, seq,
            ))  # fmt: skip

    def finish(self) -> Rows:
        r = self.rows
        r.orders = list(self.new_orders.values())
        r.order_updates = list(self.changes.values())
        r.balances = [(a, s, f, lk, q) for (a, s), (f, lk, q) in self.balances.items()]
        r.candles = list(self.candles.values())
        return r


def build(batch: Iterable[Applied], state: State) -> Rows:
    """Rows for every record of `batch` past `state.last_seq`, in order (see module contract)."""
    builder = _Builder(state)
    rows = builder.rows
    rows.prev_seq = last = state.last_seq
    first = events = 0
    add = builder.add
    for applied in batch:
        seq = applied.seq
        if seq <= last:
            continue
        if not first:
            first = seq
        last = seq
        events += len(applied.events)
        add(applied)
    if first:
        rows.first_seq, rows.last_seq = first, last
    rows.events = events
    return builder.finish()
