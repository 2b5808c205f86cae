"""PostgreSQL stops in the middle of a load and starts again: the sink never blocks, the lag
grows while it is down, and history converges to exactly what the events say."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from crossbook.history.postgres import PostgresStore
from crossbook.history.projector import Projector
from crossbook.sequencer.ports import Applied
from tests.support import history_checks as checks
from tests.support.history_workload import batches, records
from tests.support.postgres import PostgresServer


async def _eventually(predicate: Any) -> None:
    async with asyncio.timeout(30):
        for _ in iter(predicate, True):  # poll: the projector has no event for "unhealthy"
            await asyncio.sleep(0.01)


def _source(stream: list[Applied]) -> Any:
    def catch_up(after: int) -> Iterator[list[Applied]]:
        later = [a for a in stream if a.seq > after]
        for i in range(0, len(later), 250):
            yield later[i : i + 250]

    return catch_up


@pytest.mark.parametrize(
    ("with_catch_up", "synchronous"),
    [(False, True), (True, True), (True, False)],
    ids=["queue", "catch-up", "catch-up-async-commit"],
)
def test_database_outage_mid_load_converges_exactly(
    postgres_server: PostgresServer, with_catch_up: bool, synchronous: bool
) -> None:
    """With asynchronous commit an immediate stop loses acknowledged commits; the projector
    finds the database behind on its next write and re-derives them from the source."""
    stream = records(6_000)
    parts = batches(stream, largest=60)
    dsn = postgres_server.create_database(f"outage_{int(with_catch_up)}_{int(synchronous)}")

    async def run() -> None:
        projector = Projector(
            PostgresStore(dsn, synchronous_commit=synchronous),
            catch_up=_source(stream) if with_catch_up else None,
            chunk_commands=400,
            max_pending=500,
            retry_initial=0.01,
            retry_max=0.2,
        )
        await projector.start()
        slowest = 0.0
        for number, part in enumerate(parts):
            if number == len(parts) // 3:
                await asyncio.to_thread(postgres_server.stop, "immediate")
            if number == 2 * len(parts) // 3:
                await _eventually(lambda: not projector.status().healthy)
                assert projector.status().lag > 0
                await asyncio.to_thread(postgres_server.start)
            started = time.perf_counter()
            projector.on_batch(part)
            slowest = max(slowest, time.perf_counter() - started)
            await asyncio.sleep(0.001)
        async with asyncio.timeout(60):
            await projector.flush()
        status = projector.status()
        assert status.lag == 0
        assert status.failures > 0
        assert slowest < 0.05, "on_batch must never wait for the database"
        await projector.stop()

        store = PostgresStore(dsn)
        await store.open()
        try:
            want = checks.expected(stream)
            assert await checks.actual(store) == want
            assert await checks.ledger_sums(store) == want["balances"]
        finally:
            await store.close()

    asyncio.run(run())
