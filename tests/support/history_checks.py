"""What the history tables must hold for a stream of records, and what they do hold."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from crossbook.domain import events as ev
from crossbook.domain.enums import OrderStatus
from crossbook.history.schema import ORDER_KEYS, TABLES
from crossbook.history.store import HistoryStore
from crossbook.sequencer.ports import Applied

_ORDER_EVENTS = (
    ev.OrderAccepted, ev.OrderRejected, ev.OrderCanceled, ev.OrderExpired, ev.OrderAmended,
    ev.OrderTriggered,
)  # fmt: skip


def expected(records: Iterable[Applied]) -> dict[str, Any]:
    """Counts and sums read straight from the events."""
    counts: Counter[str] = Counter()
    sums: Counter[str] = Counter()
    orders: dict[tuple[str, int], tuple[int, int]] = {}
    balances: dict[tuple[int, str], tuple[int, int]] = {}
    last_seq = 0
    for applied in records:
        last_seq = applied.seq
        for e in applied.events:
            if isinstance(e, ev.TradeExecuted):
                counts["trades"] += 1
                counts["fills"] += 2
                counts["order_events"] += 2
                sums["qty"] += e.qty
                sums["quote_qty"] += e.quote_qty
                sums["fees"] += e.maker_fee + e.taker_fee
                orders[(e.symbol, e.maker_order_id)] = (e.maker_status, e.maker_filled)
                orders[(e.symbol, e.taker_order_id)] = (e.taker_status, e.taker_filled)
            elif isinstance(e, ev.BalanceChanged):
                counts["ledger"] += 1
                balances[(e.account, e.asset)] = (e.free, e.locked)
            elif isinstance(e, _ORDER_EVENTS):
                counts["order_events"] += 1
                if isinstance(e, ev.OrderAccepted):
                    counts["orders"] += 1
                    orders[(e.symbol, e.order_id)] = (OrderStatus.NEW, 0)
                elif isinstance(e, ev.OrderCanceled | ev.OrderExpired):
                    orders[(e.symbol, e.order_id)] = (e.status, e.filled)
                elif isinstance(e, ev.OrderAmended):
                    status = orders[(e.symbol, e.order_id)][0]
                    orders[(e.symbol, e.order_id)] = (status, e.filled)
    return {
        "last_seq": last_seq,
        "counts": dict(counts),
        "sums": dict(sums),
        "orders": {k: (int(s), f) for k, (s, f) in orders.items()},
        "balances": balances,
    }


def with_order_history(counts: dict[str, int]) -> dict[str, int]:
    """Table row counts with `order_events` counting an order's whole history as
    `expected` does: its other changes, its acceptance (its row) and its trades (its fills)."""
    history = sum(counts.get(table, 0) for table in ("order_events", "orders", "fills"))
    return {**counts, "order_events": history} if history else counts


async def actual(store: HistoryStore) -> dict[str, Any]:
    """The same figures, read from the database."""
    counts = {}
    for table in ("trades", "fills", "order_events", "orders", "ledger"):
        rows = await store.fetch(f"SELECT COUNT(*) FROM {table}")
        if rows[0][0]:
            counts[table] = int(rows[0][0])
    counts = with_order_history(counts)
    sums = {}
    (qty, quote_qty, fees), = await store.fetch(
        "SELECT SUM(qty), SUM(quote_qty), SUM(maker_fee + taker_fee) FROM trades"
    )  # fmt: skip
    if qty is not None:
        sums = {"qty": int(qty), "quote_qty": int(quote_qty), "fees": int(fees)}
    orders = {
        (r[0], int(r[1])): (int(r[2]), int(r[3]))
        for r in await store.fetch("SELECT symbol, order_id, status, filled FROM orders")
    }
    balances = {
        (int(r[0]), r[1]): (int(r[2]), int(r[3]))
        for r in await store.fetch("SELECT account, asset, free, locked FROM balances")
    }
    ((last_seq,),) = await store.fetch("SELECT last_seq FROM history_meta")
    return {
        "last_seq": int(last_seq),
        "counts": counts,
        "sums": sums,
        "orders": orders,
        "balances": balances,
    }


async def ledger_sums(store: HistoryStore) -> dict[tuple[int, str], tuple[int, int]]:
    rows = await store.fetch(
        "SELECT account, asset, SUM(delta_free), SUM(delta_locked) FROM ledger "
        "GROUP BY account, asset"
    )
    return {(int(r[0]), r[1]): (int(r[2]), int(r[3])) for r in rows}


async def candle_totals(store: HistoryStore) -> tuple[int, int]:
    ((volume, trades),) = await store.fetch("SELECT SUM(volume), SUM(trades) FROM candles")
    return int(volume or 0), int(trades or 0)


async def dump(store: HistoryStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every projected table, rows in primary-key order."""
    return {
        table: [tuple(row) for row in await store.fetch(
            f"SELECT * FROM {table} ORDER BY {ORDER_KEYS[table]}"
        )]
        for table in TABLES
    }  # fmt: skip
