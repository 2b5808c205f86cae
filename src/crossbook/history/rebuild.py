"""Rebuilding the history database from a stream of durable records.

Contract: `rebuild(store, source)` empties every projected table, then writes every record
of `source` (batches of `Applied`, in sequence order) exactly as the live projector would,
in chunks of `chunk` records; the resulting tables are identical to a live projection of the
same records, however either was batched. It returns the number of events written. The
store must already be open (migrations applied). It is a bulk load: the secondary indexes
are dropped while the tables fill and built again at the end.

`source` is usually the journal replayed through a fresh engine (`journal_records`), which
regenerates every event deterministically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from crossbook.history.rows import State, build
from crossbook.history.store import HistoryStore
from crossbook.sequencer.ports import Applied


async def rebuild(
    store: HistoryStore, source: Iterable[Sequence[Applied]], *, chunk: int = 20_000
) -> int:
    await store.reset()
    state = State()
    for quote_symbol, quote in (await store.load_state()).quotes.items():
        state.quotes[quote_symbol] = quote
    await store.secondary_indexes(False)
    try:
        return await project(store, source, state, chunk=chunk)
    finally:
        await store.secondary_indexes(True)


async def project(
    store: HistoryStore, source: Iterable[Sequence[Applied]], state: State, *, chunk: int
) -> int:
    """Write `source` past `state.last_seq` in chunks; returns the number of events written."""
    written = 0
    buffer: list[Applied] = []
    for batch in source:
        buffer.extend(batch)
        if len(buffer) >= chunk:
            written += await _write(store, buffer, state)
            buffer = []
    if buffer:
        written += await _write(store, buffer, state)
    return written


async def _write(store: HistoryStore, records: Sequence[Applied], state: State) -> int:
    rows = build(records, state)
    if not rows.first_seq:
        return 0
    await store.write(rows)
    state.commit(rows)
    return rows.events
