"""The projector in its own process (`ProjectorProcess`, what `crossbook serve` runs), with a
real journal, a real SQLite database and a real child process: it converges exactly to what
the events say when fed normally, when its process is killed mid-load (it is restarted and
catches up from the journal), and when the pipe backs up (batches are dropped and re-derived
from the journal). Feeding it never waits."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest

from crossbook.engine.exchange import Exchange
from crossbook.history import DEFAULT_FILE
from crossbook.history.process import ProjectorProcess
from crossbook.history.sqlite import SqliteStore
from crossbook.journal.core import JOURNAL_DIR
from crossbook.journal.file import Durability, open_journal
from crossbook.sequencer.ports import Applied
from crossbook.sequencer.workload import order_flow, setup_commands
from tests.support import history_checks as checks

BATCH = 50


def journaled(data_dir: Path, commands: int) -> list[list[Applied]]:
    """A journal of the venue setup and `commands` orders, and its batches as a node's
    sequencer hands them to sinks (one stamp per batch)."""
    flow = [*setup_commands(2, accounts=6), *itertools.islice(order_flow(11, 2, 6), commands)]
    journal, _ = open_journal(data_dir / JOURNAL_DIR, durability=Durability.NONE)
    engine, batches = Exchange(), []
    for number, start in enumerate(range(0, len(flow), BATCH)):
        ts = 1_700_000_000_000_000_000 + number * 1_000_000
        batch = []
        for seq, command in enumerate(flow[start : start + BATCH], start=start + 1):
            journal.append(seq, ts, command)
            batch.append(Applied(seq, ts, command, engine.apply(seq, ts, command)))
        batches.append(batch)
    journal.commit()
    journal.close()
    return batches


async def _converged(data_dir: Path, batches: list[list[Applied]]) -> None:
    store = SqliteStore(data_dir / DEFAULT_FILE)
    await store.open()
    try:
        want = checks.expected(a for batch in batches for a in batch)
        assert await checks.actual(store) == want
        assert await checks.ledger_sums(store) == want["balances"]
    finally:
        await store.close()


@pytest.mark.parametrize("disturbance", ["none", "killed", "backed-up"])
def test_history_process_converges_exactly(tmp_path: Path, disturbance: str) -> None:
    data_dir = tmp_path / "data"
    batches = journaled(data_dir, 3_000)

    async def run() -> None:
        history = ProjectorProcess(
            str(data_dir), data_dir, max_buffer=1 if disturbance == "backed-up" else 64 << 20
        )
        await history.start()
        slowest = 0.0
        try:
            for number, batch in enumerate(batches):
                if disturbance == "killed" and number == len(batches) // 3:
                    assert history._proc is not None
                    history._proc.kill()
                started = time.perf_counter()
                history.on_batch(batch)
                slowest = max(slowest, time.perf_counter() - started)
                await asyncio.sleep(0.002)
            async with asyncio.timeout(60):
                await history.flush()
            status = history.status()
            assert status.lag == 0
            assert status.healthy, status
            if disturbance == "killed":
                assert history.restarts >= 1
            if disturbance == "backed-up":
                assert history.dropped_batches > 0
        finally:
            await history.stop()
        assert slowest < 0.05, "on_batch must never wait for the history process"
        assert history._proc is not None
        assert history._proc.returncode == 0, "the last child exits cleanly on EOF"

    asyncio.run(run())
    asyncio.run(_converged(data_dir, batches))


def test_stop_flushes_and_leaves_no_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    batches = journaled(data_dir, 500)

    async def run() -> None:
        history = ProjectorProcess(str(data_dir), data_dir)
        await history.start()
        for batch in batches:
            history.on_batch(batch)
        await history.stop()  # EOF: the child writes what it was given, then exits
        assert history._proc is not None
        assert history._proc.returncode == 0

    asyncio.run(run())
    asyncio.run(_converged(data_dir, batches))
