"""The single writer with the real engine and a real file journal on tmp_path."""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import pytest

from crossbook.domain import events as ev
from crossbook.domain.commands import Command, Deposit, ExpireOrders, PlaceOrder
from crossbook.domain.enums import OrderType, Side, TimeInForce
from crossbook.domain.rejects import Reject
from crossbook.domain.values import AccountId, Lots, Nanos, Ticks, Units
from crossbook.engine.exchange import Exchange
from crossbook.journal.core import JOURNAL_DIR, open_core
from crossbook.journal.file import Durability, open_journal
from crossbook.journal.recovery import full_replay
from crossbook.journal.segments import iter_records, scan_journal
from crossbook.sequencer.loop import (
    Sequencer,
    SequencerConfig,
    Throttled,
    Unavailable,
    Unjournalable,
)
from crossbook.sequencer.ports import Applied
from crossbook.sequencer.workload import order_flow, setup_commands


def run(main: Coroutine[Any, Any, None]) -> None:
    asyncio.run(main)


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[Applied]] = []

    def on_batch(self, batch: Sequence[Applied]) -> None:
        self.batches.append(list(batch))

    @property
    def applied(self) -> list[Applied]:
        return [a for batch in self.batches for a in batch]


async def _setup(submit: Callable[[Command], Awaitable[Applied]]) -> None:
    for command in setup_commands(symbol_count=2, accounts=4):
        await submit(command)


def _replay_hash(data_dir: Path) -> str:
    engine, _ = full_replay(data_dir / JOURNAL_DIR, Exchange)
    return engine.state_hash()


def test_acknowledged_commands_are_journaled_and_recovered(tmp_path: Path) -> None:
    async def main() -> None:
        recorder = Recorder()
        core = await open_core(tmp_path, sinks=[recorder])
        assert core.recovery.last_seq == 0
        await _setup(core.sequencer.submit)
        flow = list(itertools.islice(order_flow(7, 2, 4), 300))
        acks = await asyncio.gather(*(core.sequencer.submit(c) for c in flow))
        assert [a.seq for a in acks] == list(range(acks[0].seq, acks[0].seq + 300))
        assert [a.command for a in acks] == flow
        assert [a.seq for a in recorder.applied] == list(range(1, core.sequencer.last_seq + 1))
        assert core.sequencer.stats.batches < core.sequencer.stats.commands  # group commit
        expected = core.engine.state_hash()
        await core.close()

        again = await open_core(tmp_path)
        assert again.recovery.last_seq == acks[-1].seq
        assert again.recovery.state_hash == expected == _replay_hash(tmp_path)
        assert (await again.sequencer.submit(flow[0])).seq == acks[-1].seq + 1
        await again.close()

    run(main())


def test_a_full_inbox_throttles_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        core = await open_core(tmp_path, config=SequencerConfig(inbox_size=3))
        commands = setup_commands(1, 1)
        futures = [core.sequencer.submit(c) for c in commands[:3]]
        with pytest.raises(Throttled) as caught:
            core.sequencer.submit(commands[3])
        assert caught.value.code is Reject.GATEWAY_THROTTLED
        await asyncio.gather(*futures)
        await core.sequencer.submit(commands[3])  # room again once the batch is through
        await core.close()

    run(main())


def test_a_failed_fsync_stops_acknowledging_for_good(tmp_path: Path) -> None:
    syncs = 0

    def fsync(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        if syncs > 3:
            raise OSError(errno.EIO, "injected EIO")
        os.fdatasync(fd)

    async def main() -> None:
        core = await open_core(tmp_path, fsync=fsync)
        acknowledged: list[Applied] = []
        failed: list[BaseException] = []
        for command in setup_commands(1, 3):
            try:
                acknowledged.append(await core.sequencer.submit(command))
            except Unavailable as exc:
                failed.append(exc)
                break
        assert len(acknowledged) == 3
        assert len(failed) == 1
        assert not core.sequencer.healthy
        assert isinstance(core.sequencer.failure, OSError)
        with pytest.raises(Unavailable) as caught:
            core.sequencer.submit(setup_commands(1, 1)[0])
        assert caught.value.code is Reject.GATEWAY_UNAVAILABLE
        assert core.sequencer.last_seq == 3
        await core.close()

    run(main())


def test_gtd_orders_expire_through_a_journaled_command(tmp_path: Path) -> None:
    async def main() -> None:
        recorder = Recorder()
        core = await open_core(tmp_path, sinks=[recorder])
        await _setup(core.sequencer.submit)
        expire = time.time_ns() + 50_000_000
        order = PlaceOrder(
            AccountId(1), "S0-USD", Side.BUY, OrderType.LIMIT, Lots(1), Ticks(900),
            tif=TimeInForce.GTD, expire_ts=Nanos(expire),
        )  # fmt: skip
        await core.sequencer.submit(order)

        def expired() -> bool:
            return any(isinstance(e, ev.OrderExpired) for a in recorder.applied for e in a.events)

        await eventually(expired)
        expiry = next(a for a in recorder.applied if isinstance(a.command, ExpireOrders))
        assert expiry.ts >= expire
        await core.close()
        state = scan_journal(tmp_path / JOURNAL_DIR, repair=False)
        assert any(isinstance(r.command, ExpireOrders) for r in iter_records(state))

    run(main())


def test_snapshots_by_count_and_on_demand_recover_to_the_replay_hash(tmp_path: Path) -> None:
    async def main() -> None:
        config = SequencerConfig(snapshot_every=100, snapshot_interval=None)
        core = await open_core(tmp_path, config=config, keep_snapshots=2)
        await _setup(core.sequencer.submit)
        for command in itertools.islice(order_flow(3, 2, 4), 450):
            await core.sequencer.submit(command)
        await eventually(lambda: core.sequencer.stats.snapshots >= 4)
        meta = await core.sequencer.snapshot()
        assert meta.seq == core.sequencer.last_seq
        assert meta.state_hash == core.engine.state_hash()
        for command in itertools.islice(order_flow(4, 2, 4), 30):
            await core.sequencer.submit(command)
        expected = core.engine.state_hash()
        await core.close()
        assert len(core.snapshots.paths()) == 2

        again = await open_core(tmp_path)
        assert again.recovery.snapshot_seq == meta.seq
        assert again.recovery.replayed == 30
        assert again.recovery.state_hash == expected == _replay_hash(tmp_path)
        await again.close()

    run(main())


def test_a_failing_sink_stops_the_sequencer(tmp_path: Path) -> None:
    class Broken:
        def on_batch(self, batch: Sequence[Applied]) -> None:
            raise RuntimeError("sink bug")

    async def main() -> None:
        core = await open_core(tmp_path, sinks=[Broken()], durability=Durability.OS)
        commands = setup_commands(1, 1)
        await core.sequencer.submit(commands[0])  # resolved before the sinks run
        await eventually(lambda: not core.sequencer.healthy)
        with pytest.raises(Unavailable):
            core.sequencer.submit(commands[1])
        await core.close()

    run(main())


def test_a_command_beyond_64_bits_is_refused_without_a_seq(tmp_path: Path) -> None:
    async def main() -> None:
        core = await open_core(tmp_path)
        setup = setup_commands(1, 1)
        too_big = Deposit(AccountId(1), "USD", Units(2**70), "huge")
        futures = [core.sequencer.submit(c) for c in (setup[0], too_big, setup[1])]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert isinstance(results[1], Unjournalable)
        assert results[1].code is Reject.GATEWAY_BAD_REQUEST
        assert [r.seq for r in results if isinstance(r, Applied)] == [1, 2]
        assert core.sequencer.healthy
        await core.close()

    run(main())


def test_refused_commands_anywhere_in_a_batch_leave_a_gapless_journal(tmp_path: Path) -> None:
    async def main() -> None:
        core = await open_core(tmp_path)
        setup = setup_commands(1, 1)
        too_big = Deposit(AccountId(1), "USD", Units(2**70), "huge")
        batch = [too_big, setup[0], too_big, too_big, setup[1], setup[2], too_big]
        futures = [core.sequencer.submit(c) for c in batch]
        results = await asyncio.gather(*futures, return_exceptions=True)
        assert [type(r) for r in results] == [
            Unjournalable, Applied, Unjournalable, Unjournalable, Applied, Applied, Unjournalable
        ]
        assert [r.seq for r in results if isinstance(r, Applied)] == [1, 2, 3]
        assert core.sequencer.last_seq == 3
        await core.sequencer.submit(setup[3])
        await core.close()
        state = scan_journal(tmp_path / JOURNAL_DIR, repair=False)
        records = list(iter_records(state))
        assert [r.seq for r in records] == [1, 2, 3, 4]
        assert [r.command for r in records] == setup[:4]

    run(main())


def test_submit_many_settles_its_commands_in_order_behind_one_future(tmp_path: Path) -> None:
    async def main() -> None:
        recorder = Recorder()
        core = await open_core(tmp_path, sinks=[recorder])
        await _setup(core.sequencer.submit)
        flow = list(itertools.islice(order_flow(3, 2, 4), 120))
        single = core.sequencer.submit(flow[0])
        group = core.sequencer.submit_many(flow[1:100])
        after = core.sequencer.submit(flow[100])
        second = core.sequencer.submit_many(flow[101:])
        outcomes = await group
        assert all(isinstance(o, Applied) for o in outcomes)
        applied = [o for o in outcomes if isinstance(o, Applied)]
        first = (await single).seq
        assert [a.seq for a in applied] == list(range(first + 1, first + 100))
        assert [a.command for a in applied] == flow[1:100]
        assert (await after).seq == first + 100
        assert [o.seq for o in await second if isinstance(o, Applied)] == list(
            range(first + 101, first + 120)
        )
        assert await core.sequencer.submit_many([]) == []
        by_seq = {a.seq: a for a in recorder.applied}
        assert all(by_seq[a.seq] == a for a in applied)  # the sinks saw the same results
        expected = core.engine.state_hash()
        await core.close()
        assert _replay_hash(tmp_path) == expected

    run(main())


def test_submit_many_spans_batches_and_fits_the_inbox_all_or_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        config = SequencerConfig(inbox_size=10, max_batch=3)
        core = await open_core(tmp_path, config=config)
        setup = setup_commands(1, 3)
        with pytest.raises(Throttled):
            core.sequencer.submit_many(setup[:11])
        assert core.sequencer.inbox_depth == 0
        outcomes = await core.sequencer.submit_many(setup[:10])
        assert [o.seq for o in outcomes if isinstance(o, Applied)] == list(range(1, 11))
        assert core.sequencer.stats.batches >= 4  # three commands a turn at most
        await core.close()

    run(main())


def test_submit_many_reports_a_refused_command_in_its_place(tmp_path: Path) -> None:
    async def main() -> None:
        config = SequencerConfig(max_batch=4)  # the group spans two turns
        core = await open_core(tmp_path, config=config)
        setup = setup_commands(1, 2)
        too_big = Deposit(AccountId(1), "USD", Units(2**70), "huge")
        commands = [setup[0], too_big, setup[1], too_big, too_big, setup[2], too_big, setup[3]]
        outcomes = await core.sequencer.submit_many(commands)
        assert [type(o) for o in outcomes] == [
            Applied, Unjournalable, Applied, Unjournalable, Unjournalable, Applied,
            Unjournalable, Applied,
        ]
        assert [o.seq for o in outcomes if isinstance(o, Applied)] == [1, 2, 3, 4]
        assert [o.command for o in outcomes if isinstance(o, Applied)] == setup[:4]
        refused = [o for o in outcomes if isinstance(o, Unjournalable)]
        assert all(r.code is Reject.GATEWAY_BAD_REQUEST for r in refused)
        assert core.sequencer.inbox_depth == 0
        await core.sequencer.submit(setup[4])
        await core.close()
        state = scan_journal(tmp_path / JOURNAL_DIR, repair=False)
        assert [r.command for r in iter_records(state)] == setup[:5]

    run(main())


def test_submit_many_after_a_failed_fsync_reports_every_command_unavailable(
    tmp_path: Path,
) -> None:
    syncs = 0

    def fsync(fd: int) -> None:
        nonlocal syncs
        syncs += 1
        if syncs > 1:
            raise OSError(errno.EIO, "injected EIO")
        os.fdatasync(fd)

    async def main() -> None:
        core = await open_core(tmp_path, fsync=fsync, config=SequencerConfig(max_batch=2))
        setup = setup_commands(1, 2)
        await core.sequencer.submit(setup[0])
        outcomes = await core.sequencer.submit_many(setup[1:5])
        assert [type(o) for o in outcomes] == [Unavailable] * 4
        assert not core.sequencer.healthy
        with pytest.raises(Unavailable):
            core.sequencer.submit_many(setup[5:6])
        assert core.sequencer.last_seq == 1
        await core.close()

    run(main())


def test_submit_many_of_refused_commands_only_or_last_resolves(tmp_path: Path) -> None:
    async def main() -> None:
        core = await open_core(tmp_path)
        setup = setup_commands(1, 1)
        too_big = Deposit(AccountId(1), "USD", Units(2**70), "huge")
        only = core.sequencer.submit_many([too_big, too_big])
        last = core.sequencer.submit_many([setup[0], too_big])
        assert [type(o) for o in await only] == [Unjournalable, Unjournalable]
        assert [type(o) for o in await last] == [Applied, Unjournalable]
        assert core.sequencer.last_seq == 1
        await core.close()

    run(main())


class _BrokenEngine:
    """An `Exchange` that raises on the command whose seq is `broken_at` (a bug in the engine)."""

    def __init__(self, broken_at: int) -> None:
        self.exchange = Exchange()
        self.broken_at = broken_at

    @property
    def last_seq(self) -> int:
        return self.exchange.last_seq

    def apply(self, seq: int, ts: int, command: Command) -> list[ev.Event]:
        if seq == self.broken_at:
            raise RuntimeError("engine bug")
        return self.exchange.apply(seq, ts, command)

    def snapshot(self) -> bytes:
        return self.exchange.snapshot()

    def state_hash(self) -> str:
        return self.exchange.state_hash()

    def next_expiry(self) -> int | None:
        return self.exchange.next_expiry()


def test_an_engine_exception_stops_the_sequencer_without_acknowledging_its_batch(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        journal, _ = open_journal(tmp_path / JOURNAL_DIR)
        sequencer = Sequencer(_BrokenEngine(broken_at=3), journal)
        sequencer.start()
        setup = setup_commands(1, 2)
        assert (await sequencer.submit(setup[0])).seq == 1
        assert (await sequencer.submit(setup[1])).seq == 2
        single = [sequencer.submit(c) for c in setup[2:4]]
        group = sequencer.submit_many(setup[4:6])
        results = await asyncio.gather(*single, return_exceptions=True)
        assert all(isinstance(r, Unavailable) for r in results)
        assert [type(o) for o in await group] == [Unavailable, Unavailable]
        assert not sequencer.healthy
        assert isinstance(sequencer.failure, RuntimeError)
        assert sequencer.last_seq == 2
        with pytest.raises(Unavailable):
            sequencer.submit(setup[6])
        await sequencer.stop()
        journal.close()

    run(main())
