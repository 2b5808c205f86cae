"""L4 adapter: the history database, a read model of the journal.

The projector (`projector.Projector`, a sequencer `Sink`) turns durable event batches into
rows (`rows`, pure) and writes them to a store: SQLite by default (`sqlite`), PostgreSQL in
production (`postgres`). The schema is versioned (`schema`) and migrated on open. `queries`
serves order history, fills, trades, the ledger and candles. `rebuild` regenerates the whole
database from the journal by replaying it through a fresh engine; it is the only module here
that touches the engine, and only through its public `Exchange.apply`.

This package may import `domain` and `sequencer.ports`; it never reaches engine internals.
"""

from __future__ import annotations

from pathlib import Path

from crossbook.history.store import HistoryStore

DEFAULT_FILE = "history.sqlite3"
"""The embedded database's file name inside the node's data directory."""

OFF = ("off", "none")


def history_target(history: str | None, data_dir: Path) -> str | None:
    """Where a node's history goes: `--history` as given (a URL or a path), the data
    directory's embedded database by default, or None when it is `off`."""
    target = history or str(data_dir)
    return None if target.lower() in OFF else target


def open_store(
    target: str | Path, *, pool_size: int = 4, rederivable: bool = False
) -> HistoryStore:
    """A store for `postgresql://...` URLs, else a SQLite file (a directory gets the default
    file name). Nothing is opened until the store's `open()`. `rederivable`: the writer can
    re-derive lost commits from the journal (a projector with a catch-up source), so
    PostgreSQL may commit without waiting for its WAL flush."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from crossbook.history.postgres import PostgresStore  # noqa: PLC0415 (optional driver)

        return PostgresStore(text, pool_size=pool_size, synchronous_commit=not rederivable)
    from crossbook.history.sqlite import SqliteStore  # noqa: PLC0415 (keep imports lazy)

    path = Path(target)
    if path.is_dir():
        path = path / DEFAULT_FILE
    return SqliteStore(path)
