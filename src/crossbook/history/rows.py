"""Events to table rows: the pure half of the history projector.

Contract:
- `build(batch, state)` turns durable `Applied` records into `Rows` for one transaction. It
  never mutates `state`; the changes it implies (balances, instruments) come back in
  `Rows.balances` / `Rows.instruments` and the caller folds them in with `State.commit` only
  after the transaction committed, so a failed write leaves the projector exactly where it was.
- Every event is identified by `(seq, idx)`, `idx` being its position in its command's event
  list; a trade touches two orders and two accounts, told apart by `leg` (0 maker, 1 taker).
- Append-only tables get one row per event (order state changes, trades, fills, ledger).
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
from typing import NamedTuple

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

Row = tuple[int | str, ...]
_NEW = int(OrderStatus.NEW)
_ACCEPTED = int(OrderEventKind.ACCEPTED)


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


def _ref_of(command: Command, events: list[Event]) -> str:
    if isinstance(command, Deposit | Withdraw):
        return command.tx_id
    if isinstance(command, CancelOrder | AmendOrder) and command.order_id:
        return str(command.order_id)
    for event in events:
        if isinstance(event, OrderAccepted | OrderCanceled | OrderAmended):
            return str(event.order_id)
    return ""


class _At(NamedTuple):
    seq: int
    idx: int
    ts: int


class _Builder:
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

    def change(self, at: _At, key: tuple[str, int], state: tuple[int, int, int, int]) -> None:
        """Fold `(status, filled, price, qty)` (with "unchanged" sentinels) into the order."""
        status, filled, price, qty = state
        new = self.new_orders.get(key)
        if new is not None:
            slots = (15, 16, 6, 7, 19, 20)
        else:
            new = self.changes.get(key)
            if new is None:
                self.changes[key] = [*key, status, filled, price, qty, at.seq, at.ts]
                return
            slots = (2, 3, 4, 5, 6, 7)
        if status:
            new[slots[0]] = status
        if filled >= 0:
            new[slots[1]] = filled
        if price:
            new[slots[2]] = price
        if qty:
            new[slots[3]] = qty
        new[slots[4]], new[slots[5]] = at.seq, at.ts

    def order_event(self, at: _At, leg: int, order: tuple[int, int, str], kind: OrderEventKind,
                    values: tuple[int, int, int, int, int, int]) -> None:  # fmt: skip
        """`order` is (order_id, account, symbol); `values` is
        (status, filled, price, qty, trade_id, detail)."""
        self.rows.order_events.append((*at[:2], leg, at.ts, *order, int(kind), *values))

    def add(self, applied: Applied) -> None:
        # The hot path: accepted orders and balance changes are inlined (most events).
        seq, ts = applied.seq, applied.ts
        order_events, ledger = self.rows.order_events, self.rows.ledger
        balances, stored = self.balances, self.state.balances
        cause: tuple[str, str] | None = None
        for idx, e in enumerate(applied.events):
            kind = type(e)
            if kind is BalanceChanged:
                assert isinstance(e, BalanceChanged)
                if cause is None:
                    cause = cause_of(applied.command), _ref_of(applied.command, applied.events)
                key = (e.account, e.asset)
                previous = balances.get(key)
                if previous is None:
                    free0, locked0 = stored.get(key, (0, 0))
                else:
                    free0, locked0, _ = previous
                balances[key] = (e.free, e.locked, seq)
                ledger.append((
                    seq, idx, ts, e.account, e.asset, e.free, e.locked, e.free - free0,
                    e.locked - locked0, cause[0], cause[1],
                ))  # fmt: skip
            elif kind is OrderAccepted:
                assert isinstance(e, OrderAccepted)
                self.new_orders[(e.symbol, e.order_id)] = [
                    e.order_id, e.account, e.symbol, int(e.side), int(e.type), int(e.tif),
                    e.price, e.qty, e.quote_qty, e.stop_price, e.expire_ts, int(e.post_only),
                    e.visible_qty, int(e.stp), e.client_order_id, _NEW, 0, seq, ts, seq, ts,
                ]  # fmt: skip
                order_events.append((
                    seq, idx, 0, ts, e.order_id, e.account, e.symbol, _ACCEPTED, _NEW, 0,
                    e.price, e.qty, 0, 0,
                ))  # fmt: skip
            elif kind is TradeExecuted:
                assert isinstance(e, TradeExecuted)
                self.trade(_At(seq, idx, ts), e)
            elif kind is not DepthChanged:
                self.other(_At(seq, idx, ts), e)

    def other(self, at: _At, e: Event) -> None:
        if isinstance(e, OrderCanceled | OrderExpired):
            canceled = isinstance(e, OrderCanceled)
            kind = OrderEventKind.CANCELED if canceled else OrderEventKind.EXPIRED
            self.change(at, (e.symbol, e.order_id), (int(e.status), e.filled, 0, 0))
            self.order_event(at, 0, (e.order_id, e.account, e.symbol), kind,
                             (int(e.status), e.filled, 0, 0, 0, int(e.reason)))  # fmt: skip
        elif isinstance(e, OrderAmended):
            status = int(
                OrderStatus.FILLED if e.filled >= e.qty
                else OrderStatus.PARTIALLY_FILLED if e.filled
                else OrderStatus.NEW
            )  # fmt: skip
            self.change(at, (e.symbol, e.order_id), (status, e.filled, e.price, e.qty))
            self.order_event(
                at,
                0,
                (e.order_id, e.account, e.symbol),
                OrderEventKind.AMENDED,
                (status, e.filled, e.price, e.qty, 0, int(e.kept_priority)),
            )
        elif isinstance(e, OrderTriggered):
            self.change(at, (e.symbol, e.order_id), (0, -1, 0, 0))
            self.order_event(at, 0, (e.order_id, e.account, e.symbol), OrderEventKind.TRIGGERED,
                             (0, -1, e.last_price, 0, 0, 0))  # fmt: skip
        elif isinstance(e, OrderRejected):
            self.order_event(at, 0, (e.order_id, e.account, e.symbol), OrderEventKind.REJECTED,
                             (int(OrderStatus.REJECTED), 0, 0, 0, 0, int(e.code)))  # fmt: skip
        elif isinstance(e, InstrumentAdded):
            i = e.instrument
            self.quotes[i.symbol] = i.quote
            self.rows.instruments.append((
                i.symbol, i.base, i.quote, i.tick_size, i.lot_size, i.base_precision,
                i.quote_precision, i.lot_units, i.notional_units, at.seq,
            ))  # fmt: skip

    def trade(self, at: _At, e: TradeExecuted) -> None:
        r = self.rows
        r.trades.append((
            e.trade_id, at.seq, at.idx, at.ts, e.symbol, e.price, e.qty, e.quote_qty,
            int(e.taker_side), e.maker_order_id, e.maker_account, e.maker_fee, e.taker_order_id,
            e.taker_account, e.taker_fee,
        ))  # fmt: skip
        fee_asset = self.quote(e.symbol)
        r.fills.append((
            at.seq, at.idx, 0, at.ts, e.trade_id, e.maker_account, e.maker_order_id, e.symbol,
            int(e.taker_side.opposite), int(Liquidity.MAKER), e.price, e.qty, e.quote_qty,
            e.maker_fee, fee_asset,
        ))  # fmt: skip
        r.fills.append((
            at.seq, at.idx, 1, at.ts, e.trade_id, e.taker_account, e.taker_order_id, e.symbol,
            int(e.taker_side), int(Liquidity.TAKER), e.price, e.qty, e.quote_qty, e.taker_fee,
            fee_asset,
        ))  # fmt: skip
        maker = (int(e.maker_status), e.maker_filled, 0, 0)
        taker = (int(e.taker_status), e.taker_filled, 0, 0)
        self.change(at, (e.symbol, e.maker_order_id), maker)
        self.change(at, (e.symbol, e.taker_order_id), taker)
        self.order_event(
            at,
            0,
            (e.maker_order_id, e.maker_account, e.symbol),
            OrderEventKind.TRADE,
            (*maker[:2], e.price, e.qty, e.trade_id, 0),
        )
        self.order_event(
            at,
            1,
            (e.taker_order_id, e.taker_account, e.symbol),
            OrderEventKind.TRADE,
            (*taker[:2], e.price, e.qty, e.trade_id, 0),
        )
        self.candle(at, e)

    def candle(self, at: _At, e: TradeExecuted) -> None:
        bucket = at.ts - at.ts % CANDLE_NS
        candle = self.candles.get((e.symbol, bucket))
        taker_buy = e.taker_side == Side.BUY
        if candle is None:
            self.candles[(e.symbol, bucket)] = [
                e.symbol, bucket, e.price, e.price, e.price, e.price, e.qty, e.quote_qty, 1,
                e.trade_id, e.trade_id, e.qty if taker_buy else 0,
                e.quote_qty if taker_buy else 0,
            ]  # fmt: skip
            return
        candle[3] = max(int(candle[3]), e.price)
        candle[4] = min(int(candle[4]), e.price)
        candle[5] = e.price
        candle[6] = int(candle[6]) + e.qty
        candle[7] = int(candle[7]) + e.quote_qty
        candle[8] = int(candle[8]) + 1
        candle[10] = e.trade_id
        if taker_buy:
            candle[11] = int(candle[11]) + e.qty
            candle[12] = int(candle[12]) + e.quote_qty

    def finish(self) -> Rows:
        r = self.rows
        r.orders = [tuple(row) for row in self.new_orders.values()]
        r.order_updates = [tuple(row) for row in self.changes.values()]
        r.balances = [(a, s, f, lk, q) for (a, s), (f, lk, q) in self.balances.items()]
        r.candles = [tuple(row) for row in self.candles.values()]
        return r


def build(batch: Iterable[Applied], state: State) -> Rows:
    """Rows for every record of `batch` past `state.last_seq`, in order (see module contract)."""
    builder = _Builder(state)
    rows = builder.rows
    rows.prev_seq = state.last_seq
    for applied in batch:
        if applied.seq <= state.last_seq or applied.seq <= rows.last_seq:
            continue
        if not rows.first_seq:
            rows.first_seq = applied.seq
        rows.last_seq = applied.seq
        rows.events += len(applied.events)
        builder.add(applied)
    return builder.finish()
