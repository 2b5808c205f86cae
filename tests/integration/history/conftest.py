"""Fixtures for history stores on real databases: a SQLite file and a throwaway PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from crossbook.history.postgres import PostgresStore
from crossbook.history.sqlite import SqliteStore
from crossbook.history.store import HistoryStore
from tests.support.postgres import PostgresServer, find_bindir

StoreFactory = Callable[[], HistoryStore]
_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    server = PostgresServer.create(bindir, {"fsync": "off"})
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture(params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def new_store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> StoreFactory:
    """Makes a store on a fresh, empty database each call (not opened yet)."""
    if store_kind == "sqlite":
        return lambda: SqliteStore(tmp_path / f"history-{next(_names)}.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return lambda: PostgresStore(server.create_database(f"history_{next(_names)}"))
