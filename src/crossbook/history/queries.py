"""Read queries over any `HistoryStore`: orders, fills, trades, the ledger and candles.

Contract:
- Times are nanoseconds since the epoch; `start` is inclusive, `end` exclusive; `None`
  means unbounded. Results are in ascending order of their key; `newest_first=True` (orders,
  fills) gives the newest `limit` instead, newest first.
- Pagination is by key, never by offset: pass the last key you saw plus one as `from_id`
  (orders: order id, fills and trades: trade id, ledger: seq). `limit` is capped at
  `MAX_LIMIT`.
- Every amount comes back as the integer that was stored (ticks, lots, asset units); the
  API edge renders decimals with the instrument.
- `candles` serves any interval: multiples of a minute are merged from the stored one-minute
  candles, other intervals are computed from trades. Buckets are aligned to the epoch. Each
  candle carries its taker-buy volumes (trades whose taker bought), as Binance klines do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from crossbook.domain.enums import OrderStatus
from crossbook.history.rows import (
    CANDLE_COLUMNS,
    CANDLE_NS,
    FILL_COLUMNS,
    LEDGER_COLUMNS,
    ORDER_COLUMNS,
    ORDER_EVENT_COLUMNS,
    TRADE_COLUMNS,
    OrderEventKind,
)
from crossbook.history.store import HistoryStore

MAX_LIMIT: Final = 1000
MAX_TRADES_PER_QUERY: Final = 100_000
"""Trades read at most for candles of an interval that is not a whole number of minutes."""


class OrderRecord(msgspec.Struct, frozen=True):
    order_id: int
    account: int
    symbol: str
    side: int
    type: int
    tif: int
    price: int
    qty: int
    quote_qty: int
    stop_price: int
    expire_ts: int
    post_only: int
    visible_qty: int
    stp: int
    client_order_id: str
    status: int
    filled: int
    created_seq: int
    created_ts: int
    updated_seq: int
    updated_ts: int


class OrderEventRecord(msgspec.Struct, frozen=True):
    seq: int
    idx: int
    leg: int
    ts: int
    order_id: int
    account: int
    symbol: str
    kind: int
    status: int
    filled: int
    price: int
    qty: int
    trade_id: int
    detail: int


class TradeRecord(msgspec.Struct, frozen=True):
    trade_id: int
    seq: int
    idx: int
    ts: int
    symbol: str
    price: int
    qty: int
    quote_qty: int
    taker_side: int
    maker_order_id: int
    maker_account: int
    maker_fee: int
    taker_order_id: int
    taker_account: int
    taker_fee: int


class FillRecord(msgspec.Struct, frozen=True):
    seq: int
    idx: int
    leg: int
    ts: int
    trade_id: int
    account: int
    order_id: int
    symbol: str
    side: int
    liquidity: int
    price: int
    qty: int
    quote_qty: int
    fee: int
    fee_asset: str


class LedgerRecord(msgspec.Struct, frozen=True):
    seq: int
    idx: int
    ts: int
    account: int
    asset: str
    free: int
    locked: int
    delta_free: int
    delta_locked: int
    cause: str
    ref: str


class Candle(msgspec.Struct, frozen=True):
    symbol: str
    open_ts: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    first_trade_id: int
    last_trade_id: int
    taker_buy_volume: int = 0
    taker_buy_quote_volume: int = 0


def _where(filters: list[tuple[str, object | None]]) -> tuple[str, list[object]]:
    clauses, params = [], []
    for clause, value in filters:
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return " AND ".join(clauses), params


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


async def _select(
    store: HistoryStore,
    table: str,
    columns: Sequence[str],
    filters: list[tuple[str, object | None]],
    *,
    order: str,
    limit: int,
) -> list[tuple[Any, ...]]:
    where, params = _where(filters)
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY {order} LIMIT ?"
    return await store.fetch(sql, [*params, _limit(limit)])


async def orders(
    store: HistoryStore,
    account: int,
    *,
    symbol: str | None = None,
    start: int | None = None,
    end: int | None = None,
    from_id: int | None = None,
    limit: int = 500,
    newest_first: bool = False,
) -> list[OrderRecord]:
    """An account's orders in their latest state, by order id (Binance `allOrders`)."""
    rows = await _select(
        store, "orders", ORDER_COLUMNS,
        [("account = ?", account), ("symbol = ?", symbol), ("created_ts >= ?", start),
         ("created_ts < ?", end), ("order_id >= ?", from_id)],
        order="order_id DESC, symbol DESC" if newest_first else "order_id, symbol",
        limit=limit,
    )  # fmt: skip
    return [OrderRecord(*row) for row in rows]


_ORDER_HISTORY: Final = f"""
SELECT created_seq, accepted_idx, 0, created_ts, order_id, account, symbol,
       {int(OrderEventKind.ACCEPTED)}, {int(OrderStatus.NEW)}, 0, accepted_price, accepted_qty,
       0, 0
FROM orders WHERE symbol = ? AND order_id = ?
UNION ALL
SELECT seq, idx, leg, ts, order_id, account, symbol, {int(OrderEventKind.TRADE)}, order_status,
       order_filled, price, qty, trade_id, 0
FROM fills WHERE symbol = ? AND order_id = ?
UNION ALL
SELECT {", ".join(ORDER_EVENT_COLUMNS)}
FROM order_events WHERE symbol = ? AND order_id = ?
ORDER BY 1, 2, 3 LIMIT ?"""
"""An order's changes: its acceptance (from its row), its trades (its fills) and the rest."""


async def order_events(store: HistoryStore, symbol: str, order_id: int) -> list[OrderEventRecord]:
    """Every state change of one order, oldest first (at most `MAX_LIMIT`)."""
    key = [symbol, order_id]
    rows = await store.fetch(_ORDER_HISTORY, [*key, *key, *key, MAX_LIMIT])
    return [OrderEventRecord(*row) for row in rows]


async def fills(
    store: HistoryStore,
    account: int,
    *,
    symbol: str | None = None,
    order_id: int | None = None,
    start: int | None = None,
    end: int | None = None,
    from_id: int | None = None,
    limit: int = 500,
    newest_first: bool = False,
) -> list[FillRecord]:
    """An account's fills with their fees, by trade id (Binance `myTrades`)."""
    rows = await _select(
        store, "fills", FILL_COLUMNS,
        [("account = ?", account), ("symbol = ?", symbol), ("order_id = ?", order_id),
         ("ts >= ?", start), ("ts < ?", end), ("trade_id >= ?", from_id)],
        order="seq DESC, idx DESC, leg DESC" if newest_first else "seq, idx, leg",
        limit=limit,
    )  # fmt: skip
    return [FillRecord(*row) for row in rows]


async def client_order_ids(
    store: HistoryStore, symbol: str, order_ids: Sequence[int]
) -> dict[int, str]:
    """The client order ids of some orders of one symbol (for fills, which do not carry it)."""
    out: dict[int, str] = {}
    unique = sorted(set(order_ids))
    for start in range(0, len(unique), 500):
        part = unique[start:start + 500]
        sql = (f"SELECT order_id, client_order_id FROM orders WHERE symbol = ? "
               f"AND order_id IN ({', '.join('?' * len(part))})")
        for order_id, client_order_id in await store.fetch(sql, [symbol, *part]):
            out[int(order_id)] = str(client_order_id)
    return out


async def trades(
    store: HistoryStore,
    symbol: str,
    *,
    start: int | None = None,
    end: int | None = None,
    from_id: int | None = None,
    limit: int = 500,
) -> list[TradeRecord]:
    """A symbol's public trades, by trade id."""
    rows = await _select(
        store, "trades", TRADE_COLUMNS,
        [("symbol = ?", symbol), ("ts >= ?", start), ("ts < ?", end), ("trade_id >= ?", from_id)],
        order="trade_id", limit=limit,
    )  # fmt: skip
    return [TradeRecord(*row) for row in rows]


async def ledger(
    store: HistoryStore,
    account: int,
    *,
    asset: str | None = None,
    start: int | None = None,
    end: int | None = None,
    from_seq: int | None = None,
    limit: int = 500,
) -> list[LedgerRecord]:
    """An account's balance changes with their causes, oldest first."""
    rows = await _select(
        store, "ledger", LEDGER_COLUMNS,
        [("account = ?", account), ("asset = ?", asset), ("ts >= ?", start), ("ts < ?", end),
         ("seq >= ?", from_seq)],
        order="seq, idx", limit=limit,
    )  # fmt: skip
    return [LedgerRecord(*row) for row in rows]


def merge(candles: Sequence[Candle], interval: int) -> list[Candle]:
    """Merge ascending candles (or one-trade candles) into buckets of `interval` ns."""
    out: list[Candle] = []
    for c in candles:
        bucket = c.open_ts - c.open_ts % interval
        last = out[-1] if out else None
        if last is None or last.open_ts != bucket or last.symbol != c.symbol:
            out.append(msgspec.structs.replace(c, open_ts=bucket))
            continue
        out[-1] = msgspec.structs.replace(
            last,
            high=max(last.high, c.high),
            low=min(last.low, c.low),
            close=c.close,
            volume=last.volume + c.volume,
            quote_volume=last.quote_volume + c.quote_volume,
            trades=last.trades + c.trades,
            last_trade_id=c.last_trade_id,
            taker_buy_volume=last.taker_buy_volume + c.taker_buy_volume,
            taker_buy_quote_volume=last.taker_buy_quote_volume + c.taker_buy_quote_volume,
        )
    return out


async def candles(
    store: HistoryStore,
    symbol: str,
    interval: int,
    *,
    start: int | None = None,
    end: int | None = None,
    limit: int = 500,
    latest: bool = False,
) -> list[Candle]:
    """Candles of `interval` ns that had trades, oldest first (Binance `klines`): the first
    `limit` from `start`, or with `latest=True` the last `limit` before `end`."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    limit = _limit(limit)
    # Binance bounds open times: the first candle opening at or after `start`, and every
    # candle opening before `end` (exclusive here), whole
    start = None if start is None else -(-start // interval) * interval
    end = None if end is None else -(-end // interval) * interval
    if interval % CANDLE_NS == 0:
        table, key, columns = "candles", "open_ts", CANDLE_COLUMNS
        source_limit = limit * (interval // CANDLE_NS)
    else:
        table, key, source_limit = "trades", "ts", MAX_TRADES_PER_QUERY
        columns = ("symbol", "ts", "price", "price", "price", "price", "qty", "quote_qty", "1",
                   "trade_id", "trade_id", "CASE WHEN taker_side = 1 THEN qty ELSE 0 END",
                   "CASE WHEN taker_side = 1 THEN quote_qty ELSE 0 END")  # fmt: skip
    rows = await store.fetch(
        *_range(table, columns, key, symbol, (start, end), source_limit, latest=latest)
    )
    parts = [Candle(*row) for row in rows]
    # a bucket merged from several rows may miss some when the row limit was reached
    cut = len(rows) >= source_limit and interval != CANDLE_NS
    if latest:
        parts.reverse()
        merged = merge(parts, interval)
        if cut and len(merged) <= limit:
            merged = merged[1:]  # the oldest bucket may miss rows the limit left out
        return merged[-limit:]
    merged = merge(parts, interval)
    if cut and len(merged) <= limit:
        merged = merged[:-1]  # the newest bucket may miss rows the limit left out
    return merged[:limit]


def _range(
    table: str,
    columns: Sequence[str],
    key: str,
    symbol: str,
    span: tuple[int | None, int | None],
    limit: int | None,
    *,
    latest: bool = False,
) -> tuple[str, list[object]]:
    start, end = span
    where, params = _where([("symbol = ?", symbol), (f"{key} >= ?", start), (f"{key} < ?", end)])
    order = f"{key} DESC" if latest else key
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY {order}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params
