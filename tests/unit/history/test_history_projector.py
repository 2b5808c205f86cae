"""The projector and the row builder against an in-memory store that fails on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from crossbook.history.projector import Projector
from crossbook.history.queries import Candle, merge
from crossbook.history.rows import CANDLE_NS, Rows, State, build
from crossbook.history.store import StaleWrite, to_numbered
from crossbook.sequencer.ports import Applied
from tests.support import history_checks as checks
from tests.support.history_workload import batches, records


class MemoryStore:
    """Keeps written rows in lists; `fail` makes the next writes raise, before or after commit."""

    def __init__(self, concurrent_writes: int = 1, latency: float = 0.0) -> None:
        self.concurrent_writes = concurrent_writes
        self.latency = latency
        self.last_seq = 0
        self.tables: dict[str, list[Any]] = {}
        self.state = State()
        self.fail_before = 0
        self.fail_after = 0
        self.writes = 0
        self.indexes: list[bool] = []

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def reset(self) -> None:
        self.tables.clear()
        self.last_seq = 0

    async def secondary_indexes(self, present: bool) -> None:
        self.indexes.append(present)

    async def schema_version(self) -> int:
        return 2

    async def load_state(self) -> State:
        return State(self.last_seq, dict(self.state.balances), dict(self.state.quotes))

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def write(self, rows: Rows) -> None:
        await asyncio.sleep(self.latency)  # overlapping writes are applied in call order
        if self.fail_before:
            self.fail_before -= 1
            raise ConnectionError("database down")
        if rows.prev_seq != self.last_seq:
            raise StaleWrite(rows.first_seq)
        self.writes += 1
        for table in ("orders", "order_events", "trades", "fills", "ledger"):
            self.tables.setdefault(table, []).extend(getattr(rows, table))
        self.state.commit(rows)
        self.last_seq = rows.last_seq
        if self.fail_after:
            self.fail_after -= 1
            raise ConnectionError("connection lost after commit")


@pytest.mark.parametrize("concurrent_writes", [1, 2])
def test_outages_and_lost_commits_write_everything_exactly_once(concurrent_writes: int) -> None:
    stream = records(2_000)
    store = MemoryStore(concurrent_writes, latency=0.002)

    async def run() -> None:
        projector = Projector(store, chunk_commands=100, retry_initial=0.001, retry_max=0.002)
        await projector.start()
        for number, part in enumerate(batches(stream, largest=50)):
            if number % 10 == 3:
                store.fail_before = 2
            if number % 10 == 7:
                store.fail_after = 1
            projector.on_batch(part)
            projector.on_batch(part[:1])  # a duplicate offer is ignored
            await asyncio.sleep(0)
        async with asyncio.timeout(10):
            await projector.flush()
        status = projector.status()
        assert status.lag == 0
        assert status.failures > 0
        assert status.events_written <= sum(len(a.events) for a in stream)
        await projector.stop()

    asyncio.run(run())
    want = checks.expected(stream)["counts"]
    assert checks.with_order_history(
        {table: len(rows) for table, rows in store.tables.items()}
    ) == {table: want[table] for table in store.tables}
    keys = [row[:3] for row in store.tables["fills"]]
    assert len(keys) == len(set(keys))


def test_build_skips_what_is_stored_and_collapses_order_state() -> None:
    stream = records(400)
    rows = build(stream, State())
    assert rows.first_seq == 1
    assert rows.last_seq == 400
    later = build(stream, State(last_seq=300))
    assert later.first_seq == 301
    assert all(row[0] > 300 for row in later.ledger)
    keys = [(row[2], row[0]) for row in rows.orders]
    assert len(keys) == len(set(keys))
    assert rows.order_updates == []
    assert all(row[14] == "USDT" for row in rows.fills)


def test_ledger_deltas_continue_from_the_committed_state() -> None:
    stream = records(600)
    state = State()
    first = build(stream[:300], state)
    state.commit(first)
    second = build(stream, state)
    together = build(stream, State())
    assert first.ledger + second.ledger == together.ledger


def test_merge_and_placeholders() -> None:
    minute = [
        Candle("X", 0, 10, 12, 9, 11, 5, 50, 2, 1, 2, 3, 30),
        Candle("X", CANDLE_NS, 11, 15, 11, 14, 1, 14, 1, 3, 3, 0, 0),
        Candle("X", 3 * CANDLE_NS, 14, 14, 7, 8, 2, 20, 2, 4, 5, 1, 10),
    ]
    [merged] = merge(minute, 5 * CANDLE_NS)
    assert (merged.open, merged.high, merged.low, merged.close) == (10, 15, 7, 8)
    assert (merged.volume, merged.trades, merged.last_trade_id) == (8, 5, 5)
    assert (merged.taker_buy_volume, merged.taker_buy_quote_volume) == (4, 40)
    assert len(merge(minute, 2 * CANDLE_NS)) == 2
    assert to_numbered("a = ? AND b < ?") == "a = $1 AND b < $2"


def test_catch_up_into_an_empty_database_is_a_bulk_load() -> None:
    """Secondary indexes are dropped for a catch-up from nothing and rebuilt before `flush`
    returns; a catch-up onto projected rows keeps them."""
    stream = records(1_000)

    async def catch_up(store: MemoryStore, head: int) -> None:
        def source(after: int) -> Iterator[list[Applied]]:
            later = [a for a in stream if after < a.seq <= head]
            for i in range(0, len(later), 100):
                yield later[i : i + 100]

        projector = Projector(store, catch_up=source, chunk_commands=300)
        projector.head_seq = head
        await projector.start()
        async with asyncio.timeout(10):
            await projector.flush()
        assert store.indexes[-1:] in ([], [True])
        await projector.stop()

    store = MemoryStore()
    asyncio.run(catch_up(store, 600))
    assert store.indexes == [False, True]
    assert store.last_seq == 600
    asyncio.run(catch_up(store, stream[-1].seq))
    assert store.indexes == [False, True]
    assert store.last_seq == stream[-1].seq


def test_linger_gathers_a_trickle_of_batches_into_fewer_writes() -> None:
    stream = records(200)

    async def trickle(linger: float) -> MemoryStore:
        store = MemoryStore()
        projector = Projector(store, chunk_commands=1_000, linger=linger)
        await projector.start()
        for record in stream:  # one-command batches, as under light load
            projector.on_batch([record])
            await asyncio.sleep(0.0005)
        async with asyncio.timeout(10):
            await projector.flush()
        assert projector.status().lag == 0
        await projector.stop()
        return store

    eager = asyncio.run(trickle(0.0))
    lingering = asyncio.run(trickle(0.05))
    for table in ("order_events", "trades", "fills", "ledger"):  # the same rows, exactly once
        assert lingering.tables[table] == eager.tables[table], table
    # orders: one row per order either way (a chunk folds an order's later states into it)
    assert [row[0] for row in lingering.tables["orders"]] == [
        row[0] for row in eager.tables["orders"]
    ]
    assert lingering.writes * 3 <= eager.writes
