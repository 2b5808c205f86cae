"""The port every history database implements, and the errors it may raise.

Contract:
- `open()` connects and applies pending migrations; `close()` releases everything.
- `load_state()` returns what the projector must remember: the last projected sequence,
  current balances and instruments' quote assets.
- `write(rows)` stores one `Rows` in one transaction together with `last_seq`. It refuses
  (raises `StaleWrite`, writing nothing) unless the database's `last_seq` is exactly
  `rows.prev_seq`: so a write whose commit was lost on the wire is never applied twice
  (the database is ahead), and a database that lost its newest commits (a crash with
  asynchronous commit) never gets a hole (it is behind; the projector re-reads its state
  and fills the gap from the journal).
- `concurrent_writes`: how many `write` calls may overlap. The caller starts them in
  sequence order (each built on the rows of the one before); the store applies them in
  that order, and one whose predecessor failed is refused (`StaleWrite`) or fails.
- `fetch(sql, params)` runs one read query written with `?` placeholders in the common SQL
  subset and returns plain tuples; the query functions in `queries` are built on it.
- `reset()` empties every projected table and sets `last_seq` to 0 (for a rebuild).
- `secondary_indexes(False)` drops the indexes that only reads use
  (`schema.SECONDARY_INDEXES`), for a bulk load into an empty database; `(True)` builds the
  missing ones again. Both are idempotent; `open()` builds any that are missing, so a bulk
  load cut short by a crash leaves no table without its indexes after a restart.
- Any other exception means "unavailable for now": the projector keeps its queue, backs
  off and retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from crossbook.history.rows import Rows, State


class StaleWrite(Exception):
    """The database already contains the first sequence of the rows offered."""


class HistoryStore(Protocol):
    concurrent_writes: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load_state(self) -> State: ...

    async def write(self, rows: Rows) -> None: ...

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    async def schema_version(self) -> int: ...

    async def reset(self) -> None: ...

    async def secondary_indexes(self, present: bool) -> None: ...


UPSERT_BALANCES = (
    "INSERT INTO balances (account, asset, free, locked, seq) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (account, asset) DO UPDATE SET free = excluded.free, "
    "locked = excluded.locked, seq = excluded.seq"
)
UPSERT_INSTRUMENTS = (
    "INSERT INTO instruments (symbol, base, quote, tick_size, lot_size, base_precision, "
    "quote_precision, lot_units, notional_units, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (symbol) DO UPDATE SET base = excluded.base, quote = excluded.quote, "
    "tick_size = excluded.tick_size, lot_size = excluded.lot_size, "
    "base_precision = excluded.base_precision, quote_precision = excluded.quote_precision, "
    "lot_units = excluded.lot_units, notional_units = excluded.notional_units, seq = excluded.seq"
)
CLAIM_SEQ = "UPDATE history_meta SET last_seq = ? WHERE id = 1 AND last_seq = ?"


def placeholders(count: int) -> str:
    return ", ".join("?" * count)


def to_numbered(sql: str) -> str:
    """Rewrite `?` placeholders as PostgreSQL's `$1, $2, ...` (no `?` inside literals)."""
    parts = sql.split("?")
    out = [parts[0]]
    for number, part in enumerate(parts[1:], start=1):
        out.append(f"${number}{part}")
    return "".join(out)
