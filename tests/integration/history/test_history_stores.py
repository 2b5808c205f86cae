"""History on real databases (SQLite file, local PostgreSQL): projection, idempotence, rebuild,
migrations, queries."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import msgspec
import pytest

from crossbook.domain.events import OrderAccepted
from crossbook.history import queries
from crossbook.history import rows as rows_module
from crossbook.history.projector import Projector
from crossbook.history.rebuild import rebuild
from crossbook.history.rows import CANDLE_NS, State, build
from crossbook.history.schema import MIGRATIONS, SECONDARY_INDEXES
from crossbook.history.store import HistoryStore, StaleWrite
from tests.integration.history.conftest import StoreFactory
from tests.support import history_checks as checks
from tests.support.history_workload import batches, records


async def _project(store: HistoryStore, parts: list[list[Any]]) -> None:
    projector = Projector(store, chunk_commands=500)
    await projector.start()
    for part in parts:
        projector.on_batch(part)
        await asyncio.sleep(0)
    async with asyncio.timeout(60):
        await projector.flush()
    await projector.stop()


async def _check_matches(store: HistoryStore, stream: list[Any]) -> None:
    want = checks.expected(stream)
    got = await checks.actual(store)
    assert got == want
    assert await checks.ledger_sums(store) == want["balances"]
    assert await checks.candle_totals(store) == (want["sums"]["qty"], want["counts"]["trades"])


def test_projection_counts_and_sums_equal_the_events(new_store: StoreFactory) -> None:
    stream = records(3_000)

    async def run() -> None:
        store = new_store()
        await _project(store, batches(stream))
        await store.open()
        try:
            await _check_matches(store, stream)
            assert await store.schema_version() == len(MIGRATIONS)
        finally:
            await store.close()

    asyncio.run(run())


def test_replay_writes_nothing_twice(new_store: StoreFactory) -> None:
    stream = records(1_500)

    async def run() -> None:
        store = new_store()
        await _project(store, batches(stream))
        await store.open()
        before = await checks.dump(store)
        state = await store.load_state()
        replay = build(stream[-100:], State(quotes=state.quotes))
        with pytest.raises(StaleWrite):
            await store.write(replay)
        await store.close()
        await _project(store, batches(stream, seed=9))
        await store.open()
        try:
            assert await checks.dump(store) == before
        finally:
            await store.close()

    asyncio.run(run())


def test_rebuild_gives_identical_tables(new_store: StoreFactory) -> None:
    stream = records(2_000)

    async def run() -> None:
        live, rebuilt = new_store(), new_store()
        await _project(live, batches(stream))
        await live.open()
        await rebuilt.open()
        try:
            written = await rebuild(rebuilt, batches(stream, seed=11, largest=40), chunk=700)
            assert written == sum(len(a.events) for a in stream)
            assert await checks.dump(rebuilt) == await checks.dump(live)
            await rebuild(live, [stream], chunk=10_000)
            assert await checks.dump(live) == await checks.dump(rebuilt)
        finally:
            await live.close()
            await rebuilt.close()

    asyncio.run(run())


_V1_TABLES = ("orders", "order_events", "trades", "fills", "ledger", "balances")
_COLUMNS = {
    "orders": rows_module.ORDER_COLUMNS,
    "order_events": rows_module.ORDER_EVENT_COLUMNS,
    "trades": rows_module.TRADE_COLUMNS,
    "fills": rows_module.FILL_COLUMNS,
    "ledger": rows_module.LEDGER_COLUMNS,
    "balances": rows_module.BALANCE_COLUMNS,
}


def _v1_rows(rows: rows_module.Rows) -> dict[str, list[Any]]:
    """`rows` as version 1 stored them: every acceptance and trade leg in `order_events` too
    (since version 6 they are only the order's row and its fills)."""
    orders = [list(row) for row in rows.orders]
    fills = [list(row) for row in rows.fills]
    accepted = [
        (o[17], o[21], 0, o[18], o[0], o[1], o[2], 1, 1, 0, o[22], o[23], 0, 0) for o in orders
    ]
    traded = [
        (f[0], f[1], f[2], f[3], f[6], f[5], f[7], 3, f[15], f[16], f[10], f[11], f[4], 0)
        for f in fills
    ]
    events = sorted([*map(tuple, rows.order_events), *accepted, *traded], key=lambda e: e[:3])
    return {
        "orders": [row[: len(rows_module.ORDER_COLUMNS)] for row in orders],
        "order_events": events,
        "trades": list(rows.trades),
        "fills": [row[: len(rows_module.FILL_COLUMNS)] for row in fills],
        "ledger": list(rows.ledger),
        "balances": list(rows.balances),
    }


def test_migrations_run_on_an_older_schema(new_store: StoreFactory, store_kind: str) -> None:
    stream = records(2_000)
    rows = build(stream, State())
    v1 = _v1_rows(rows)

    async def run() -> None:
        old, fresh = new_store(), new_store()
        await old.open(target_version=1)  # type: ignore[attr-defined]
        assert await old.schema_version() == 1
        for table in _V1_TABLES:
            names = ", ".join(_COLUMNS[table])
            for row in v1[table]:
                marks = ", ".join("?" * len(row))
                await old.fetch(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row))
        await old.fetch("UPDATE history_meta SET last_seq = ?", [rows.last_seq])
        await old.close()

        await old.open()
        await _project(fresh, [stream])
        await fresh.open()
        try:
            assert await old.schema_version() == len(MIGRATIONS)
            old_tables, fresh_tables = await checks.dump(old), await checks.dump(fresh)
            for table in (*_V1_TABLES, "candles"):
                assert old_tables[table] == fresh_tables[table], table
            # an order's history reads as version 1 stored it, migrated or projected anew
            for order in v1["orders"][::50]:
                symbol, order_id = order[2], order[0]
                stored = [e for e in v1["order_events"] if e[6] == symbol and e[4] == order_id]
                assert len(stored) >= 1
                for store in (old, fresh):
                    history = await queries.order_events(store, symbol, order_id)
                    assert [tuple(msgspec.structs.astuple(e)) for e in history] == stored
            state = await old.load_state()
            assert state.last_seq == stream[-1].seq
        finally:
            await old.close()
            await fresh.close()

    asyncio.run(run())


def test_queries_filter_and_paginate(new_store: StoreFactory) -> None:
    stream = records(3_000)

    async def run() -> None:
        store = new_store()
        await _project(store, batches(stream))
        await store.open()
        try:
            all_orders = []
            from_id = None
            while True:
                page = await queries.orders(store, 3, symbol="BTC-USDT", from_id=from_id, limit=7)
                all_orders += page
                if len(page) < 7:
                    break
                from_id = page[-1].order_id + 1
            placed = {
                e.order_id
                for a in stream
                for e in a.events
                if isinstance(e, OrderAccepted) and e.account == 3 and e.symbol == "BTC-USDT"
            }
            assert [o.order_id for o in all_orders] == sorted(placed)
            one = all_orders[0]
            history = await queries.order_events(store, one.symbol, one.order_id)
            assert history[0].kind == 1

            fills = await queries.fills(store, 3, limit=1000)
            assert all(f.account == 3 and f.fee_asset == "USDT" for f in fills)
            trades = await queries.trades(store, "ETH-USDT", limit=1000)
            mid = trades[len(trades) // 2].ts
            later = await queries.trades(store, "ETH-USDT", start=mid, limit=1000)
            assert later == [t for t in trades if t.ts >= mid]

            ledger = await queries.ledger(store, 3, asset="USDT", limit=1000)
            assert sum(x.delta_free for x in ledger) == ledger[-1].free

            minute = await queries.candles(store, "BTC-USDT", CANDLE_NS, limit=1000)
            five = await queries.candles(store, "BTC-USDT", 5 * CANDLE_NS, limit=1000)
            odd = await queries.candles(store, "BTC-USDT", 7_000_000_000, limit=1000)
            btc = await queries.trades(store, "BTC-USDT", limit=1000)
            bought = [t for t in btc if t.taker_side == 1]
            assert 0 < len(bought) < len(btc)
            for series in (minute, five, odd):
                assert sum(c.volume for c in series) == sum(t.qty for t in btc)
                assert sum(c.taker_buy_volume for c in series) == sum(t.qty for t in bought)
                assert sum(c.taker_buy_quote_volume for c in series) == sum(
                    t.quote_qty for t in bought)  # fmt: skip
                assert series[0].open == btc[0].price
                assert series[-1].close == btc[-1].price
            assert len(five) < len(minute)
        finally:
            await store.close()

    asyncio.run(run())


async def _index_definitions(store: HistoryStore, store_kind: str) -> dict[str, str]:
    if store_kind == "sqlite":
        rows = await store.fetch("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
    else:
        rows = await store.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        )
    return {str(name): str(sql) for name, sql in rows}


def test_bulk_load_indexes_come_back_as_the_migrations_made_them(
    new_store: StoreFactory, store_kind: str
) -> None:
    """`secondary_indexes` drops exactly `SECONDARY_INDEXES` and builds them as migrated;
    `open()` builds any that a bulk load cut short left out."""

    async def run() -> None:
        store = new_store()
        await store.open()
        try:
            migrated = await _index_definitions(store, store_kind)
            names = {name for name, _ in SECONDARY_INDEXES}
            assert names <= set(migrated)
            await store.secondary_indexes(False)
            assert set(await _index_definitions(store, store_kind)) == set(migrated) - names
            await store.secondary_indexes(False)  # idempotent
            await store.close()
            await store.open()
            assert await _index_definitions(store, store_kind) == migrated
            await store.secondary_indexes(False)
            await store.secondary_indexes(True)
            await store.secondary_indexes(True)
            assert await _index_definitions(store, store_kind) == migrated
        finally:
            await store.close()

    asyncio.run(run())


def test_overlapping_writes_commit_in_order_or_not_at_all(new_store: StoreFactory) -> None:
    """Writes started before the previous one finished (the projector keeps the store's
    `concurrent_writes` in flight) commit in call order and see the orders written before
    them; one whose predecessor is refused is refused too and leaves nothing behind."""
    stream = records(1_500)

    def chunks() -> list[rows_module.Rows]:
        state, out = State(), []
        for start in range(0, len(stream), 500):
            rows = build(stream[start:start + 500], state)
            state.commit(rows)
            out.append(rows)
        return out

    async def run() -> None:
        store = new_store()
        await store.open()
        try:
            first, *rest = chunks()
            wrong = dataclasses.replace(first, prev_seq=first.prev_seq + 7)
            refused = await asyncio.gather(
                *(store.write(rows) for rows in (wrong, *rest)), return_exceptions=True
            )
            assert [type(outcome) for outcome in refused] == [StaleWrite] * 3
            assert (await store.load_state()).last_seq == 0
            assert not any((await checks.dump(store)).values())
            await asyncio.gather(*(store.write(rows) for rows in chunks()))
            await _check_matches(store, stream)
        finally:
            await store.close()

    asyncio.run(run())
