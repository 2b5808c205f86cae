"""The single writer: drain → stamp → append → sync → apply → release, one batch per turn.

Theory of operation. Callers `submit` commands into a bounded inbox and await a future, or
`submit_many` a list of commands and await one future for all their results (a gateway that
reads many requests at once). The sequencer task takes everything queued (up to `max_batch`)
as one batch, stamps each command with the next `seq` and the batch's `ts` (`max(clock,
previous ts)`, so stamps never go back), and appends the batch to the journal in one call.
It then starts the journal's `commit` (write + fsync: one group commit per batch) on a worker
thread and, while that runs, folds the batch through the engine; new submissions gather in
the inbox meanwhile. Only when the commit has returned are the futures resolved with their
`Applied` and the sinks called with the whole batch, in seq order. Nothing leaves the
sequencer before it is durable. The commit thread hands the result back with
`call_soon_threadsafe`; that callback releases the batch and, while work is queued, starts
the next turn at once (no task to resume in between): the sequencer's task only sleeps while
the inbox is empty.

Contract:
- A full inbox raises `Throttled` (GATEWAY_THROTTLED) at once; memory stays bounded.
  `submit_many` is all or nothing: it raises when its commands do not all fit.
- `submit_many`'s future resolves with one entry per command, in order: its `Applied`, or the
  `SequencerError` that refused it (`Unjournalable`, or `Unavailable` once the sequencer
  stopped); it resolves only when every command is settled, and never raises.
- The first journal failure (EIO, ENOSPC, ...), engine exception or sink exception stops the
  sequencer for good: the batch in flight and everything queued fail with `Unavailable`
  (GATEWAY_UNAVAILABLE), later submissions raise it at once, and `healthy` turns False.
  Commands of a failed batch are never acknowledged. (Crash-only: restart, recover.)
- Time-driven work is a command: at `engine.next_expiry()` the sequencer enqueues its own
  `ExpireOrders()`, which is stamped and journaled like any other, so replay reproduces it.
- Snapshots are captured on the loop at a batch boundary after the batch is durable
  (`engine.snapshot()` and `state_hash()`, in memory) every `snapshot_every` commands or
  `snapshot_interval` seconds, or on demand (`await snapshot()`); the file is written by the
  `SnapshotWriter` on its own thread while intake goes on. One snapshot is in flight at a time.

Latency. A batch waits for one fsync; under load the batch grows, so throughput follows the
disk's sync rate times the batch size while latency stays near one or two fsyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from typing import Protocol

from crossbook.domain.commands import Command, ExpireOrders
from crossbook.domain.events import Event
from crossbook.domain.rejects import Reject
from crossbook.sequencer.ports import (
    Applied,
    BatchJournal,
    Clock,
    Engine,
    Journal,
    PreparingJournal,
    Sink,
    SnapshotMeta,
    SnapshotWriter,
)

log = logging.getLogger(__name__)

_MAX_TIMER_DELAY = 60.0


class SequencerError(Exception):
    code = Reject.GATEWAY_UNAVAILABLE


class Throttled(SequencerError):
    code = Reject.GATEWAY_THROTTLED


class Unavailable(SequencerError):
    code = Reject.GATEWAY_UNAVAILABLE


class Unjournalable(SequencerError):
    """The journal cannot encode the command (an integer beyond 64 bits): refused, no seq."""

    code = Reject.GATEWAY_BAD_REQUEST


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    inbox_size: int = 65_536
    max_batch: int = 65_536
    snapshot_every: int | None = 1_000_000
    """Commands between automatic snapshots (None: never by count)."""
    snapshot_interval: float | None = 600.0
    """Seconds between automatic snapshots (None: never by time)."""
    record_samples: bool = False
    """Keep every batch size and commit latency in `stats` (benchmarks)."""
    measure_apply: bool = False
    """Add the loop thread's CPU time spent in `engine.apply` to `stats.apply_cpu_ns` (one
    clock read per batch; benchmarks split the sequencer's own cost from the engine's)."""
    record_turns: bool = False
    """Keep each batch's hand-off times in `stats.turns` (latency traces)."""


@dataclass(slots=True)
class SequencerStats:
    batches: int = 0
    commands: int = 0
    snapshots: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    commit_ns: list[int] = field(default_factory=list)
    apply_cpu_ns: int = 0
    turns: list[tuple[int, int, int, int, int]] = field(default_factory=list)
    """With `record_turns`, per batch (`time.perf_counter_ns`): the turn started (the commit
    handed to its thread), the commit began and ended on that thread, the loop released the
    batch; then its size."""


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()


_Done = Callable[[int, BaseException | None], None]
_Batch = tuple[list[Command], list["_Owner | None"], int, int]
"""A batch whose commit is in flight: commands, owners, first seq, ts."""
_NO_BATCH: _Batch = ([], [], 0, 0)
_Work = tuple[asyncio.AbstractEventLoop, _Done, Callable[[], int], Callable[[], None] | None]
Outcome = Applied | SequencerError
"""What `submit_many` gives for each command."""


class _Owner(Protocol):
    """Who waits for a command: its future (`submit`) or its group (`submit_many`)."""

    def done(self) -> bool: ...

    def set_result(self, result: Applied, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class _Group:
    """The waiter of one `submit_many`: every command of it has this as its owner. Commands
    settle in inbox order, so outcomes are appended as they come; a command refused while it
    is appended (`refuse`) is set aside by its slot and merged in when the last one settles.
    A group always takes its outcomes (`done` is False): it counts them to know its end, and
    a cancelled future is simply not resolved."""

    __slots__ = ("_count", "_expect", "_future", "_outcomes", "_refused")

    def __init__(self, future: asyncio.Future[list[Outcome]], count: int) -> None:
        self._future = future
        self._count = count
        self._expect = count  # outcomes to append: the commands not refused
        self._outcomes: list[Outcome] = []
        self._refused: dict[int, Outcome] = {}

    def done(self) -> bool:
        return False

    def set_result(self, result: Applied, /) -> None:
        outcomes = self._outcomes
        outcomes.append(result)
        if len(outcomes) == self._expect:
            self._complete()

    def set_exception(self, exception: BaseException, /) -> None:
        error = exception if isinstance(exception, SequencerError) else Unavailable(repr(exception))
        self._outcomes.append(error)
        if len(self._outcomes) == self._expect:
            self._complete()

    def first_open(self) -> int:
        """The slot of the first command not settled yet (for the rare refusal path)."""
        at, settled, refused = 0, len(self._outcomes), self._refused
        while at in refused or settled:
            if at not in refused:
                settled -= 1
            at += 1
        return at

    def refuse(self, slot: int, error: SequencerError) -> None:
        self._refused[slot] = error
        self._expect -= 1
        if len(self._outcomes) == self._expect:
            self._complete()

    def _complete(self) -> None:
        outcomes, refused = self._outcomes, self._refused
        if refused:
            settled = iter(outcomes)
            outcomes = [
                refused[at] if at in refused else next(settled) for at in range(self._count)
            ]
        if not self._future.done():
            self._future.set_result(outcomes)


class CommitThread:
    """Runs the journal's commits one at a time on a thread of its own: a queue in, the loop's
    `call_soon_threadsafe(done, result, error)` out. Per batch this costs less CPU than a
    `ThreadPoolExecutor` with `wrap_future` (two futures, their locks and callbacks, and the
    executor's coroutine checks) or a future the sequencer's task awaits (one more turn of the
    event loop before the task resumes), which a light load pays once per command."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        work: Callable[[], int],
        loop: asyncio.AbstractEventLoop,
        done: _Done,
        after: Callable[[], None] | None = None,
    ) -> None:
        """Run `work` on the thread, then `done(result, None)` or `done(0, exception)` on `loop`,
        then `after()` (which must not raise) on the thread."""
        self._queue.put((loop, done, work, after))

    def shutdown(self) -> None:
        """Finish what was submitted, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        get = self._queue.get
        while (item := get()) is not None:
            loop, done, work, after = item
            error: BaseException | None = None
            result = 0
            try:
                result = work()
            except BaseException as exc:  # handed to the loop, as an executor would
                error = exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it
                loop.call_soon_threadsafe(done, result, error)
            if after is not None and error is None:
                after()


class Sequencer:
    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        *,
        clock: Clock | None = None,
        sinks: Sequence[Sink] = (),
        snapshots: SnapshotWriter | None = None,
        config: SequencerConfig | None = None,
        last_ts: int = 0,
    ) -> None:
        self.engine = engine
        self.config = config or SequencerConfig()
        self.stats = SequencerStats()
        self.failure: BaseException | None = None
        self._journal = journal
        self._clock = clock or SystemClock()
        self._sinks = list(sinks)
        self._snapshots = snapshots
        self._append_many = (
            journal.append_many if isinstance(journal, BatchJournal) else _one_by_one(journal)
        )
        self._prepare = journal.prepare if isinstance(journal, PreparingJournal) else None
        # The inbox is two parallel lists: the commands and who waits for each (None for the
        # sequencer's own ExpireOrders). A turn takes both lists whole.
        self._inbox: list[Command] = []
        self._owners: list[_Owner | None] = []
        self._inbox_size = self.config.inbox_size
        self._external = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._idle: asyncio.Future[None] | None = None
        self._in_flight: _Batch = _NO_BATCH
        self._results: list[list[Event]] = []
        self._apply_error: Exception | None = None
        self._turn_at = 0
        self._commit_span = (0, 0)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_seq = engine.last_seq
        self._last_ts = last_ts
        self._journal_thread = CommitThread("journal")
        self._snapshot_thread = ThreadPoolExecutor(1, thread_name_prefix="snapshot")
        self._snapshot_task: asyncio.Future[None] | None = None
        self._snapshot_waiters: list[asyncio.Future[SnapshotMeta]] = []
        self._snapshot_seq = engine.last_seq
        self._snapshot_time = time.monotonic()
        self._expiry_timer: asyncio.TimerHandle | None = None
        self._expiry_due: int | None = None
        self._expiry_queued = False
        self._last_expire_ts = -1

    # -- public API --------------------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        return self.failure is None

    @property
    def last_seq(self) -> int:
        """The seq of the last durable, applied command."""
        return self._last_seq

    @property
    def inbox_depth(self) -> int:
        """Commands queued for the next turn."""
        return len(self._inbox)

    def add_sink(self, sink: Sink) -> None:
        """Sinks see every batch applied after they are added, in seq order."""
        self._sinks.append(sink)

    def start(self) -> None:
        if self._task is None:
            # Kept: asyncio.get_running_loop() makes a getpid system call on every call.
            self._loop = loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="sequencer")
            self._schedule_expiry()

    def submit(self, command: Command) -> asyncio.Future[Applied]:
        """Queue a command; the future resolves once it is durable and applied."""
        if self.failure is not None or self._stopping:
            raise self._refusal()
        if self._external >= self._inbox_size:
            raise Throttled(f"inbox full ({self._inbox_size} commands)")
        future: asyncio.Future[Applied] = (self._loop or asyncio.get_running_loop()).create_future()
        self._inbox.append(command)
        self._owners.append(future)
        self._external += 1
        if self._waiter is not None:  # the loop sleeps only on an empty inbox
            self._wake()
        return future

    def submit_many(self, commands: Sequence[Command]) -> asyncio.Future[list[Outcome]]:
        """Queue `commands` (all or none) behind one future, which resolves once each is
        settled with its `Applied` or the `SequencerError` that refused it, in order."""
        if self.failure is not None or self._stopping:
            raise self._refusal()
        count = len(commands)
        if self._external + count > self._inbox_size:
            raise Throttled(f"inbox full ({self._inbox_size} commands)")
        future: asyncio.Future[list[Outcome]] = (
            self._loop or asyncio.get_running_loop()
        ).create_future()
        if not count:
            future.set_result([])
            return future
        self._inbox += commands
        self._owners += [_Group(future, count)] * count
        self._external += count
        if self._waiter is not None:
            self._wake()
        return future

    async def snapshot(self) -> SnapshotMeta:
        """Take a snapshot at the next batch boundary and wait until it is on disk."""
        if self._snapshots is None:
            raise RuntimeError("no snapshot store configured")
        if self.failure is not None:
            raise Unavailable(f"sequencer stopped: {self.failure!r}")
        waiter: asyncio.Future[SnapshotMeta] = asyncio.get_running_loop().create_future()
        self._snapshot_waiters.append(waiter)
        self._wake()
        return await waiter

    async def stop(self) -> None:
        """Finish what is queued, wait for a snapshot in flight, release the threads."""
        self._stopping = True
        self._wake()
        if self._task is not None:
            await self._task
        if self._snapshot_task is not None:
            await asyncio.wait([self._snapshot_task])
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        for waiter in self._snapshot_waiters:
            if not waiter.done():
                waiter.set_exception(Unavailable("sequencer stopped"))
        self._journal_thread.shutdown()
        self._snapshot_thread.shutdown()

    def _refusal(self) -> Unavailable:
        if self.failure is not None:
            return Unavailable(f"sequencer stopped: {self.failure!r}")
        return Unavailable("sequencer is stopping")

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.failure is None:
            if self._snapshot_waiters and self._snapshot_task is None:
                self._capture_snapshot()
            if not self._inbox:
                if self._stopping:
                    return
                self._waiter = loop.create_future()
                await self._waiter
                continue
            # Turns follow each other in callbacks (`_start_turn`, then `_end_turn` when the
            # commit is back) while the inbox has work; the chain resolves `_idle` when it stops.
            self._idle = idle = loop.create_future()
            self._start_turn(loop)
            await idle

    def _take(self) -> tuple[list[Command], list[_Owner | None]]:
        commands, owners, limit = self._inbox, self._owners, self.config.max_batch
        if len(commands) <= limit:
            self._inbox, self._owners = [], []
            return commands, owners
        self._inbox, self._owners = commands[limit:], owners[limit:]
        return commands[:limit], owners[:limit]

    def _start_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        """Take a batch, stamp and journal it, start its commit and apply it meanwhile."""
        try:
            while True:
                commands, owners = self._take()
                ts = max(self._clock.now_ns(), self._last_ts)
                first = self._last_seq + 1
                appended = self._append_many(first, ts, commands)
                if appended < len(commands):
                    commands, owners = self._append_each(commands, owners, appended, first, ts)
                if commands:
                    break
                if not self._inbox:  # every command refused, nothing else queued
                    self._stop_chain()
                    return
        except Exception as exc:  # a bug in the loop itself: never leave callers waiting
            self._fail(exc, [])
            self._stop_chain()
            return
        self._in_flight = (commands, owners, first, ts)
        if self.config.record_turns:
            self._turn_at = time.perf_counter_ns()
        self._journal_thread.submit(self._timed_commit, loop, self._end_turn, self._prepare)
        try:
            self._results = self._apply(commands, first, ts)
        except Exception as exc:  # a bug in the engine: stop (once the commit is back), replay
            self._apply_error = exc

    def _end_turn(self, elapsed: int, error: BaseException | None) -> None:
        """The batch's commit is back: release it (or fail), then go on while work is queued."""
        commands, owners, first, ts = self._in_flight
        self._in_flight = _NO_BATCH  # keep nothing of a released batch alive
        results, self._results = self._results, []
        failure, self._apply_error = self._apply_error or error, None
        if failure is not None:
            self._fail(failure, owners)
            self._stop_chain()
            return
        if self.config.record_turns:
            began, ended = self._commit_span
            self.stats.turns.append(
                (self._turn_at, began, ended, time.perf_counter_ns(), len(commands))
            )
        try:
            self._release(commands, owners, first, ts, results, elapsed)
        except Exception as exc:  # a bug in the loop itself: never leave callers waiting
            self._fail(exc, [])
        if self.failure is not None:
            self._stop_chain()
            return
        self._next_turn(asyncio.get_running_loop() if self._loop is None else self._loop)

    def _next_turn(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._inbox and self.failure is None:
            self._start_turn(loop)
        else:
            self._stop_chain()

    def _stop_chain(self) -> None:
        idle = self._idle
        if idle is not None and not idle.done():
            idle.set_result(None)

    def _release(
        self,
        commands: list[Command],
        owners: list[_Owner | None],
        first: int,
        ts: int,
        results: list[list[Event]],
        elapsed: int,
    ) -> None:
        count = len(commands)
        self._last_seq, self._last_ts = first + count - 1, ts
        self._record(count, elapsed)
        applied = list(
            map(Applied, range(first, first + count), repeat(ts, count), commands, results)
        )
        for owner, done in zip(owners, applied, strict=True):
            if owner is not None and not owner.done():
                owner.set_result(done)
        internal = owners.count(None)  # the sequencer's own ExpireOrders
        self._external -= count - internal
        if internal:
            self._expiry_queued = False
            self._last_expire_ts = ts
        try:
            for sink in self._sinks:
                sink.on_batch(applied)
        except Exception as exc:  # a broken sink would lose output: stop rather than drift
            self._fail(exc, [])
            return
        self._schedule_expiry()
        self._maybe_snapshot()

    def _timed_commit(self) -> int:
        started = time.perf_counter_ns()
        self._journal.commit()
        ended = time.perf_counter_ns()
        self._commit_span = (started, ended)
        return ended - started

    def _append_each(
        self,
        commands: list[Command],
        owners: list[_Owner | None],
        appended: int,
        first: int,
        ts: int,
    ) -> tuple[list[Command], list[_Owner | None]]:
        """The rest of a batch whose journal append stopped at a command it cannot encode
        (the leading commands are in the journal): append one at a time, refuse what cannot
        be encoded (no seq), return the commands kept and their owners."""
        append = self._journal.append
        kept, kept_owners = list[Command](), list[_Owner | None]()
        slots: dict[int, list[int]] = {}  # a group's next slot in this batch: [first open + seen]
        for index, (command, owner) in enumerate(zip(commands, owners, strict=True)):
            slot = 0
            if isinstance(owner, _Group):
                seen = slots.setdefault(id(owner), [owner.first_open()])
                slot = seen[0]
                seen[0] += 1
            try:
                if index >= appended:
                    append(first + len(kept), ts, command)
            except (OverflowError, TypeError, ValueError) as exc:
                error = Unjournalable(f"cannot journal {command!r}: {exc}")
                if isinstance(owner, _Group):
                    self._external -= 1
                    owner.refuse(slot, error)
                elif owner is not None:
                    self._external -= 1
                    if not owner.done():
                        owner.set_exception(error)
                continue
            kept.append(command)
            kept_owners.append(owner)
        return kept, kept_owners

    def _apply(self, commands: list[Command], first: int, ts: int) -> list[list[Event]]:
        apply, count = self.engine.apply, len(commands)
        if not self.config.measure_apply:
            return list(map(apply, range(first, first + count), repeat(ts, count), commands))
        started = time.thread_time_ns()
        results = list(map(apply, range(first, first + count), repeat(ts, count), commands))
        self.stats.apply_cpu_ns += time.thread_time_ns() - started
        return results

    def _record(self, size: int, commit_ns: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.commands += size
        if self.config.record_samples:
            stats.batch_sizes.append(size)
            stats.commit_ns.append(commit_ns)

    def _fail(self, exc: BaseException, batch: list[_Owner | None]) -> None:
        log.critical("sequencer stopped, no further acknowledgements: %r", exc)
        self.failure = exc
        error = Unavailable(f"not acknowledged: sequencer stopped after {exc!r}")
        for owner in [*batch, *self._owners]:
            if owner is not None and not owner.done():
                owner.set_exception(error)
        self._inbox.clear()
        self._owners.clear()
        self._external = 0
        for waiter in self._snapshot_waiters:
            if not waiter.done():
                waiter.set_exception(error)
        self._snapshot_waiters.clear()
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()

    # -- expiry timer ------------------------------------------------------------------------

    def _schedule_expiry(self) -> None:
        due = self.engine.next_expiry()
        if due is None or self._expiry_queued or self.failure is not None:
            return
        due = max(due, self._last_expire_ts + 1)
        if due == self._expiry_due and self._expiry_timer is not None:
            return
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
        self._expiry_due = due
        delay = min(max(due - self._clock.now_ns(), 0) / 1e9, _MAX_TIMER_DELAY)
        self._expiry_timer = asyncio.get_running_loop().call_later(delay, self._expiry_fired)

    def _expiry_fired(self) -> None:
        self._expiry_timer = None
        due = self._expiry_due
        if due is None or self.failure is not None or self._stopping:
            return
        if self._clock.now_ns() < due:
            self._expiry_due = None
            self._schedule_expiry()
            return
        self._expiry_due = None
        self._expiry_queued = True
        self._inbox.append(ExpireOrders())
        self._owners.append(None)
        self._wake()

    # -- snapshots ---------------------------------------------------------------------------

    def _maybe_snapshot(self) -> None:
        if self._snapshots is None or self._snapshot_task is not None:
            return
        every, interval = self.config.snapshot_every, self.config.snapshot_interval
        due_by_count = every is not None and self._last_seq - self._snapshot_seq >= every
        due_by_time = (
            interval is not None
            and self._last_seq > self._snapshot_seq
            and time.monotonic() - self._snapshot_time >= interval
        )
        if due_by_count or due_by_time or self._snapshot_waiters:
            self._capture_snapshot()

    def _capture_snapshot(self) -> None:
        writer = self._snapshots
        assert writer is not None
        meta = SnapshotMeta(
            seq=self._last_seq,
            ts=self._last_ts,
            state_hash=self.engine.state_hash(),
            created_ns=self._clock.now_ns(),
        )
        body = self.engine.snapshot()
        waiters, self._snapshot_waiters = self._snapshot_waiters, []
        self._snapshot_seq, self._snapshot_time = meta.seq, time.monotonic()
        task = asyncio.get_running_loop().run_in_executor(
            self._snapshot_thread, writer.write, meta, body
        )
        self._snapshot_task = task

        def written(done: asyncio.Future[None]) -> None:
            self._snapshot_task = None
            error = done.exception()
            if error is None:
                self.stats.snapshots += 1
            else:
                log.error("snapshot at seq %d failed: %r", meta.seq, error)
            for waiter in waiters:
                if waiter.done():
                    continue
                if error is None:
                    waiter.set_result(meta)
                else:
                    waiter.set_exception(error)
            self._wake()

        task.add_done_callback(written)


def _one_by_one(journal: Journal) -> Callable[[int, int, list[Command]], int]:
    """`append_many` for a journal that has only `append`."""

    def append_many(first_seq: int, ts: int, commands: list[Command]) -> int:
        append = journal.append
        for seq, command in enumerate(commands, first_seq):
            try:
                append(seq, ts, command)
            except (OverflowError, TypeError, ValueError):
                return seq - first_seq
        return len(commands)

    return append_many
