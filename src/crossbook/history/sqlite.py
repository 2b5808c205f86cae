"""The embedded history store: one SQLite file in WAL mode, driven from one worker thread.

Contract: see `store.HistoryStore`. Every call runs on a private single-thread executor that
owns the connection, so the event loop never waits on disk and SQLite sees one thread.
Reads share that thread, which serialises them with writes (simple, and enough for an
embedded node). `synchronous=NORMAL` is safe here: the journal, not this file, is the
durable record, and a lost tail is re-projected from it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from crossbook.history.rows import (
    CANDLE_COLUMNS,
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
    UPSERT_BALANCES,
    UPSERT_INSTRUMENTS,
    StaleWrite,
    placeholders,
)

T = TypeVar("T")


def _insert(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders(len(columns))})"


_INSERTS = (
    ("orders", _insert("orders", ORDER_ROW_COLUMNS)),
    ("order_events", _insert("order_events", ORDER_EVENT_COLUMNS)),
    ("trades", _insert("trades", TRADE_COLUMNS)),
    ("fills", _insert("fills", FILL_ROW_COLUMNS)),
    ("ledger", _insert("ledger", LEDGER_COLUMNS)),
)
_UPDATE_ORDERS = (
    "UPDATE orders SET status = COALESCE(NULLIF(?3, 0), status), "
    "filled = CASE WHEN ?4 < 0 THEN filled ELSE ?4 END, "
    "price = COALESCE(NULLIF(?5, 0), price), qty = COALESCE(NULLIF(?6, 0), qty), "
    "updated_seq = ?7, updated_ts = ?8 WHERE symbol = ?1 AND order_id = ?2"
)
_UPSERT_CANDLES = (
    _insert("candles", CANDLE_COLUMNS) + " ON CONFLICT (symbol, open_ts) DO UPDATE SET "
    "high = MAX(high, excluded.high), low = MIN(low, excluded.low), close = excluded.close, "
    "volume = volume + excluded.volume, quote_volume = quote_volume + excluded.quote_volume, "
    "trades = trades + excluded.trades, last_trade_id = excluded.last_trade_id, "
    "taker_buy_volume = taker_buy_volume + excluded.taker_buy_volume, "
    "taker_buy_quote_volume = taker_buy_quote_volume + excluded.taker_buy_quote_volume"
)


class SqliteStore:
    concurrent_writes = 1

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("history store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("history store is not open")
        return self._db

    async def open(self, *, target_version: int | None = None) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-sqlite")
        await self._run(lambda: self._open(target_version))

    def _open(self, target_version: int | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        self._db = db
        db.execute(VERSION_TABLE)
        (current,) = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
        target = len(MIGRATIONS) if target_version is None else target_version
        for version in range(int(current), target):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in statements(version, "sqlite"):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                    (version + 1, time.time_ns()),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        if target == len(MIGRATIONS):  # a bulk load cut short left them out
            self._secondary_indexes(True)

    def _secondary_indexes(self, present: bool) -> None:
        statements = create_secondary_indexes("sqlite") if present else drop_secondary_indexes()
        for statement in statements:
            self.db.execute(statement)

    async def secondary_indexes(self, present: bool) -> None:
        await self._run(lambda: self._secondary_indexes(present))

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        if self._executor is not None:
            await self._run(close)
            self._executor.shutdown(wait=True)
            self._executor = None

    async def schema_version(self) -> int:
        rows = await self.fetch("SELECT COALESCE(MAX(version), 0) FROM schema_version")
        return int(str(rows[0][0]))

    async def load_state(self) -> State:
        return await self._run(self._load_state)

    def _load_state(self) -> State:
        db = self.db
        (last_seq,) = db.execute("SELECT last_seq FROM history_meta WHERE id = 1").fetchone()
        state = State(last_seq=int(last_seq))
        for account, asset, free, locked in db.execute(
            "SELECT account, asset, free, locked FROM balances"
        ):
            state.balances[(account, asset)] = (free, locked)
        for symbol, quote in db.execute("SELECT symbol, quote FROM instruments"):
            state.quotes[symbol] = quote
        return state

    async def write(self, rows: Rows) -> None:
        await self._run(lambda: self._write(rows))

    def _write(self, rows: Rows) -> None:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute(CLAIM_SEQ, (rows.last_seq, rows.prev_seq)).rowcount != 1:
                raise StaleWrite(rows.first_seq)
            db.executemany(UPSERT_INSTRUMENTS, rows.instruments)
            for table, sql in _INSERTS:
                db.executemany(sql, getattr(rows, table))
            db.executemany(_UPDATE_ORDERS, rows.order_updates)
            db.executemany(UPSERT_BALANCES, rows.balances)
            db.executemany(_UPSERT_CANDLES, rows.candles)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    async def reset(self) -> None:
        def reset() -> None:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            for table in TABLES:
                db.execute(f"DELETE FROM {table}")
            db.execute("UPDATE history_meta SET last_seq = 0 WHERE id = 1")
            db.execute("COMMIT")

        await self._run(reset)

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return await self._run(lambda: list(self.db.execute(sql, tuple(params))))
