"""The single writer: drain → stamp → append → sync → apply → release, one batch per turn.

Theory of operation. Callers `submit` commands into a bounded inbox and await a future. The
sequencer task takes everything queued (up to `max_batch`) as one batch, stamps each command
with the next `seq` and the batch's `ts` (`max(clock, previous ts)`, so stamps never go back),
and appends the batch to the journal. It then starts the journal's `commit` (write + fsync:
one group commit per batch) on a worker thread and, while that runs, folds the batch through
the engine; new submissions gather in the inbox meanwhile. Only when the commit has returned
are the futures resolved with their `Applied` and the sinks called with the whole batch, in
seq order. Nothing leaves the sequencer before it is durable.

Contract:
- A full inbox raises `Throttled` (GATEWAY_THROTTLED) at once; memory stays bounded.
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
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat

from crossbook.domain.commands import Command, ExpireOrders
from crossbook.domain.events import Event
from crossbook.domain.rejects import Reject
from crossbook.sequencer.ports import (
    Applied,
    Clock,
    Engine,
    Journal,
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


@dataclass(slots=True)
class SequencerStats:
    batches: int = 0
    commands: int = 0
    snapshots: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    commit_ns: list[int] = field(default_factory=list)
    apply_cpu_ns: int = 0


class SystemClock:
    def now_ns(self) -> int:
        return time.time_ns()


_Entry = tuple[Command, "asyncio.Future[Applied] | None"]
_Work = tuple[asyncio.AbstractEventLoop, "asyncio.Future[int]", Callable[[], int]]


class CommitThread:
    """Runs the journal's commits one at a time on a thread of its own: a queue in, the loop's
    `call_soon_threadsafe` out. Per batch this costs about a fifth less CPU than a
    `ThreadPoolExecutor` with `wrap_future` (two futures, their locks and callbacks, and the
    executor's coroutine checks), which a light load pays once per command."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Callable[[], int]) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self._queue.put((loop, future, work))
        return future

    def shutdown(self) -> None:
        """Finish what was submitted, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        get = self._queue.get
        while (item := get()) is not None:
            loop, future, work = item
            error: BaseException | None = None
            result = 0
            try:
                result = work()
            except BaseException as exc:  # handed to the waiting coroutine, as an executor would
                error = exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits for it
                loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: asyncio.Future[int], result: int, error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


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
        self._inbox: deque[_Entry] = deque()
        self._inbox_size = self.config.inbox_size
        self._external = 0
        self._wake = asyncio.Event()
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

    def add_sink(self, sink: Sink) -> None:
        """Sinks see every batch applied after they are added, in seq order."""
        self._sinks.append(sink)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sequencer")
            self._schedule_expiry()

    def submit(self, command: Command) -> asyncio.Future[Applied]:
        """Queue a command; the future resolves once it is durable and applied."""
        if self.failure is not None:
            raise Unavailable(f"sequencer stopped: {self.failure!r}")
        if self._stopping:
            raise Unavailable("sequencer is stopping")
        if self._external >= self._inbox_size:
            raise Throttled(f"inbox full ({self._inbox_size} commands)")
        future: asyncio.Future[Applied] = asyncio.get_running_loop().create_future()
        inbox = self._inbox
        inbox.append((command, future))
        self._external += 1
        if len(inbox) == 1:  # the loop sleeps only on an empty inbox
            self._wake.set()
        return future

    async def snapshot(self) -> SnapshotMeta:
        """Take a snapshot at the next batch boundary and wait until it is on disk."""
        if self._snapshots is None:
            raise RuntimeError("no snapshot store configured")
        if self.failure is not None:
            raise Unavailable(f"sequencer stopped: {self.failure!r}")
        waiter: asyncio.Future[SnapshotMeta] = asyncio.get_running_loop().create_future()
        self._snapshot_waiters.append(waiter)
        self._wake.set()
        return await waiter

    async def stop(self) -> None:
        """Finish what is queued, wait for a snapshot in flight, release the threads."""
        self._stopping = True
        self._wake.set()
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

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while self.failure is None:
            if self._snapshot_waiters and self._snapshot_task is None:
                self._capture_snapshot()
            if not self._inbox:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._turn()
            except Exception as exc:  # a bug in the loop itself: never leave callers waiting
                self._fail(exc, [])

    async def _turn(self) -> None:
        inbox, limit = self._inbox, self.config.max_batch
        if len(inbox) <= limit:
            batch = list(inbox)
            inbox.clear()
        else:
            popleft = inbox.popleft
            batch = [popleft() for _ in range(limit)]
        ts = max(self._clock.now_ns(), self._last_ts)
        first = self._last_seq + 1
        batch = self._append(batch, first, ts)
        if not batch:
            return
        commit = self._journal_thread.submit(self._timed_commit)
        try:
            results = self._apply(batch, first, ts)
        except Exception as exc:  # a bug in the engine: stop, restart, replay
            await asyncio.wait([commit])
            self._fail(exc, batch)
            return
        try:
            elapsed = await commit
        except OSError as exc:
            self._fail(exc, batch)
            return
        count = len(batch)
        self._last_seq, self._last_ts = first + count - 1, ts
        self._record(count, elapsed)
        commands = [command for command, _ in batch]
        seqs, stamps = range(first, first + count), repeat(ts, count)
        applied = list(map(Applied, seqs, stamps, commands, results))
        external = 0
        for (command, future), done in zip(batch, applied, strict=True):
            if future is not None:
                external += 1
                if not future.done():
                    future.set_result(done)
            elif isinstance(command, ExpireOrders):
                self._expiry_queued = False
                self._last_expire_ts = ts
        self._external -= external
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
        return time.perf_counter_ns() - started

    def _append(self, batch: list[_Entry], first: int, ts: int) -> list[_Entry]:
        """Journal the batch; a command the journal cannot encode is refused and takes no seq."""
        append = self._journal.append
        seq = first
        try:
            for command, _ in batch:
                append(seq, ts, command)
                seq += 1
        except (OverflowError, TypeError, ValueError):
            done = seq - first
            return batch[:done] + self._append_each(batch[done:], seq, ts)
        return batch

    def _append_each(self, batch: list[_Entry], first: int, ts: int) -> list[_Entry]:
        append, kept = self._journal.append, list[_Entry]()
        for command, future in batch:
            try:
                append(first + len(kept), ts, command)
            except (OverflowError, TypeError, ValueError) as exc:
                if future is not None:
                    self._external -= 1
                    if not future.done():
                        future.set_exception(Unjournalable(f"cannot journal {command!r}: {exc}"))
                continue
            kept.append((command, future))
        return kept

    def _apply(self, batch: list[_Entry], first: int, ts: int) -> list[list[Event]]:
        apply = self.engine.apply
        if not self.config.measure_apply:
            return [apply(seq, ts, command) for seq, (command, _) in enumerate(batch, first)]
        started = time.thread_time_ns()
        results = [apply(seq, ts, command) for seq, (command, _) in enumerate(batch, first)]
        self.stats.apply_cpu_ns += time.thread_time_ns() - started
        return results

    def _record(self, size: int, commit_ns: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.commands += size
        if self.config.record_samples:
            stats.batch_sizes.append(size)
            stats.commit_ns.append(commit_ns)

    def _fail(self, exc: BaseException, batch: list[_Entry]) -> None:
        log.critical("sequencer stopped, no further acknowledgements: %r", exc)
        self.failure = exc
        error = Unavailable(f"not acknowledged: sequencer stopped after {exc!r}")
        for _, future in [*batch, *self._inbox]:
            if future is not None and not future.done():
                future.set_exception(error)
        self._inbox.clear()
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
        self._inbox.append((ExpireOrders(), None))
        self._wake.set()

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
            self._wake.set()

        task.add_done_callback(written)
