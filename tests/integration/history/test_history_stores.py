"""History on real databases (SQLite file, local PostgreSQL): projection, idempotence, rebuild,
migrations, queries."""

from __future__ import annotations

import asyncio
from typing import Any

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


def test_migrations_run_on_an_older_schema(new_store: StoreFactory, store_kind: str) -> None:
    stream = records(2_000)
    rows = build(stream, State())

    async def run() -> None:
        old, fresh = new_store(), new_store()
        await old.open(target_version=1)  # type: ignore[attr-defined]
        assert await old.schema_version() == 1
        for table in _V1_TABLES:
            names = ", ".join(_COLUMNS[table])
            for row in getattr(rows, table):
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
