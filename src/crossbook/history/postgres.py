"""The production history store: PostgreSQL through an asyncpg connection pool.

Contract: see `store.HistoryStore`. One write is one transaction: append-only tables are
loaded with binary COPY; order state changes, balances and candles are applied by single
set-based statements over `unnest` arrays, so a batch costs a handful of round trips
whatever its size. Two writes may be in flight at once (`concurrent_writes`), each on its
own connection: a write loads its new rows first and claims its sequence range last, once
the write called before it has finished, so the server inserts one chunk's rows while the
previous chunk's transaction completes; see `write`. With `synchronous_commit=False`
(what a node uses: it always has the journal to catch up from) transactions commit without
waiting for the WAL flush, see `_BEGIN_NO_SYNC_WAIT`. Migrations take an advisory lock so
that two nodes starting together do not both migrate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final

import asyncpg

from crossbook.history.rows import (
    FILL_ROW_COLUMNS,
    LEDGER_COLUMNS,
    ORDER_EVENT_COLUMNS,
    ORDER_ROW_COLUMNS,
    TRADE_COLUMNS,
    Rows,
    State,
)
from crossbook.history.schema import (
    MIGRATIONS,
    TABLES,
    VERSION_TABLE,
    create_secondary_indexes,
    drop_secondary_indexes,
    statements,
)
from crossbook.history.store import (
    CLAIM_SEQ,
    UPSERT_INSTRUMENTS,
    StaleWrite,
    to_numbered,
)

_MIGRATION_LOCK: Final = 0x63626B68  # an arbitrary constant shared by every node

_COPIES: Final = (
    ("orders", ORDER_ROW_COLUMNS),
    ("order_events", ORDER_EVENT_COLUMNS),
    ("trades", TRADE_COLUMNS),
    ("fills", FILL_ROW_COLUMNS),
    ("ledger", LEDGER_COLUMNS),
)
_BEGIN: Final = "SELECT last_seq FROM history_meta WHERE id = 1"
_BEGIN_NO_SYNC_WAIT: Final = (
    "SELECT last_seq, set_config('synchronous_commit', 'off', true) "
    "FROM history_meta WHERE id = 1"
)
"""`_BEGIN`, and the transaction commits without waiting for the WAL flush. A server crash
can lose the newest committed transactions, whole (rows and `last_seq` together), never
part of one; the next write is then refused (`last_seq` is behind `rows.prev_seq`), the
projector re-reads the older `last_seq` and re-derives the rest from the journal, the
durable record. Exactly-once holds. Only for a projector with a catch-up source: without
one, acknowledged records are gone from its queue and a lost commit would be a lost row."""
_UPDATE_ORDERS: Final = """
UPDATE orders AS o SET
    status = COALESCE(NULLIF(u.status, 0), o.status),
    filled = CASE WHEN u.filled < 0 THEN o.filled ELSE u.filled END,
    price = COALESCE(NULLIF(u.price, 0), o.price),
    qty = COALESCE(NULLIF(u.qty, 0), o.qty),
    updated_seq = u.seq, updated_ts = u.ts
FROM unnest($1::text[], $2::bigint[], $3::smallint[], $4::bigint[], $5::bigint[],
            $6::bigint[], $7::bigint[], $8::bigint[])
     AS u(symbol, order_id, status, filled, price, qty, seq, ts)
WHERE o.symbol = u.symbol AND o.order_id = u.order_id
"""
_UPSERT_BALANCES: Final = """
INSERT INTO balances (account, asset, free, locked, seq)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
ON CONFLICT (account, asset) DO UPDATE SET
    free = excluded.free, locked = excluded.locked, seq = excluded.seq
"""
_UPSERT_CANDLES: Final = """
INSERT INTO candles (symbol, open_ts, open, high, low, close, volume, quote_volume, trades,
                     first_trade_id, last_trade_id, taker_buy_volume, taker_buy_quote_volume)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                     $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[],
                     $11::bigint[], $12::bigint[], $13::bigint[])
ON CONFLICT (symbol, open_ts) DO UPDATE SET
    high = GREATEST(candles.high, excluded.high), low = LEAST(candles.low, excluded.low),
    close = excluded.close, volume = candles.volume + excluded.volume,
    quote_volume = candles.quote_volume + excluded.quote_volume,
    trades = candles.trades + excluded.trades, last_trade_id = excluded.last_trade_id,
    taker_buy_volume = candles.taker_buy_volume + excluded.taker_buy_volume,
    taker_buy_quote_volume = candles.taker_buy_quote_volume + excluded.taker_buy_quote_volume
"""


def _columns(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    if not rows:
        return [[] for _ in range(width)]
    return [list(column) for column in zip(*rows, strict=True)]


class PostgresStore:
    concurrent_writes = 2

    def __init__(self, dsn: str, *, pool_size: int = 4, synchronous_commit: bool = True) -> None:
        self.dsn = dsn
        self.synchronous_commit = synchronous_commit
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._previous: asyncio.Future[None] | None = None
        """Resolved when the last write called has finished (committed or not)."""

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("history store is not open")
        return self._pool

    async def open(self, *, target_version: int | None = None) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn, min_size=1, max_size=self.pool_size, command_timeout=60
        )
        target = len(MIGRATIONS) if target_version is None else target_version
        async with self.pool.acquire() as con:
            await con.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                await con.execute(VERSION_TABLE)
                current = await con.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
                for version in range(int(current), target):
                    async with con.transaction():
                        for statement in statements(version, "postgresql"):
                            await con.execute(statement)
                        await con.execute(
                            "INSERT INTO schema_version (version, applied_ts) VALUES ($1, $2)",
                            version + 1,
                            time.time_ns(),
                        )
                if target == len(MIGRATIONS):  # a bulk load cut short left them out
                    for statement in create_secondary_indexes("postgresql"):
                        await con.execute(statement)
            finally:
                await con.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)

    async def close(self) -> None:
        self._previous = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def schema_version(self) -> int:
        value = await self.pool.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(value)

    async def load_state(self) -> State:
        async with self.pool.acquire() as con:
            last_seq = await con.fetchval("SELECT last_seq FROM history_meta WHERE id = 1")
            state = State(last_seq=int(last_seq))
            for record in await con.fetch("SELECT account, asset, free, locked FROM balances"):
                state.balances[(record[0], record[1])] = (record[2], record[3])
            for record in await con.fetch("SELECT symbol, quote FROM instruments"):
                state.quotes[record[0]] = record[1]
        return state

    async def write(self, rows: Rows) -> None:
        """Overlapping calls (at most `concurrent_writes`, in sequence order) are applied in
        the order they were made. Each loads its new rows (COPY) at once, then waits for the
        previous call to finish before it claims `rows.prev_seq -> rows.last_seq` and applies
        the changes to current-state tables: its statements then see the previous chunk's
        orders, and a claim never finds the previous transaction still open (it would read
        the older `last_seq` and be refused). If the previous write failed, the claim is
        refused (`StaleWrite`) and this one rolls back too, so nothing is ever committed
        past a hole and a crash loses whole chunks only."""
        previous = self._previous
        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._previous = finished
        try:
            await self._write(rows, previous)
        finally:
            finished.set_result(None)

    async def _write(self, rows: Rows, previous: asyncio.Future[None] | None) -> None:
        async with self.pool.acquire() as con, con.transaction():
            stored = await con.fetchval(
                _BEGIN if self.synchronous_commit else _BEGIN_NO_SYNC_WAIT
            )  # fmt: skip
            if stored >= rows.first_seq:  # already written: its commit outcome was lost
                raise StaleWrite(rows.first_seq)
            for table, columns in _COPIES:
                records = getattr(rows, table)
                if records:
                    await con.copy_records_to_table(table, records=records, columns=columns)
            if previous is not None and not previous.done():
                await asyncio.wait((previous,))  # not cancelled if this write is
            claimed = await con.execute(to_numbered(CLAIM_SEQ), rows.last_seq, rows.prev_seq)
            if claimed != "UPDATE 1":
                raise StaleWrite(rows.first_seq)
            if rows.instruments:
                await con.executemany(to_numbered(UPSERT_INSTRUMENTS), rows.instruments)
            if rows.order_updates:
                await con.execute(_UPDATE_ORDERS, *_columns(rows.order_updates, 8))
            if rows.balances:
                await con.execute(_UPSERT_BALANCES, *_columns(rows.balances, 5))
            if rows.candles:
                await con.execute(_UPSERT_CANDLES, *_columns(rows.candles, 13))

    async def reset(self) -> None:
        async with self.pool.acquire() as con, con.transaction():
            await con.execute(f"TRUNCATE {', '.join(TABLES)}")
            await con.execute("UPDATE history_meta SET last_seq = 0 WHERE id = 1")

    async def secondary_indexes(self, present: bool) -> None:
        if not present:
            async with self.pool.acquire() as con:
                for statement in drop_secondary_indexes():
                    await con.execute(statement)
            return
        # built two at a time on two connections (largest first): after a bulk load the
        # builds are all that is left to do, and each is one backend's sort
        pending = iter(create_secondary_indexes("postgresql"))

        async def build() -> None:
            async with self.pool.acquire() as con:
                for statement in pending:
                    await con.execute(statement)

        async with asyncio.TaskGroup() as group:
            for _ in range(min(2, self.pool_size)):
                group.create_task(build())

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        records = await self.pool.fetch(to_numbered(sql), *params)
        return [tuple(record) for record in records]
