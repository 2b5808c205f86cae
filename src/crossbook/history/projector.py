"""The history projector: a sequencer `Sink` that writes durable batches to a history store.

Contract:
- `on_batch` runs on the sequencer's loop and only appends to an in-memory queue: O(batch),
  no I/O, never raises. A background task takes up to `chunk_commands` records at a time,
  turns them into rows (`rows.build`) and writes them in one transaction with the last
  sequence number, so every event lands exactly once: records at or below the stored
  `last_seq` are skipped, and a write whose commit outcome was lost is refused by the store
  (`StaleWrite`) after the projector re-reads its state.
- If the store fails (database down, disk full), trading is unaffected: the queue keeps
  growing, `status().lag` shows how far behind history is, and the writer retries with
  exponential backoff, re-reading the stored state before each retry.
- With a `catch_up` source (records after a sequence, read back from the journal), the queue
  is bounded: past `max_pending` records it is dropped and the gap is filled from the source
  instead, as it is on start when the database is behind the journal. Without one the queue
  is unbounded and a database behind the journal is reported in `status().gap`.
- `start()` never fails on the database: when the store cannot be opened (PostgreSQL not up
  yet), the writer keeps trying in the background like any other failure, and the node
  starts trading regardless.
- Pipelined: rows for the next chunk are built on a worker thread (with the cyclic
  collector paused) while earlier chunks' transactions are in flight (at most the store's
  `concurrent_writes` at a time, started in sequence order; the store commits them in that
  order). Chunks start small and double up to `chunk_commands` while a backlog lasts, so
  the database starts on the first rows at once instead of after a whole chunk's build.
  The build state (`state`: balances, quotes, last seq) runs ahead of the database by the
  chunks in flight; `stored_seq` is what is committed. Any failure cancels the writes in
  flight and reloads the state from the database before retrying, so speculation never
  leaks.
- A catch-up into an empty database (nothing projected yet: a new history database beside
  an old journal) is a bulk load: the store's secondary indexes are dropped first and built
  again once the catch-up is done, before any live write (`store.secondary_indexes`).
- `linger` (seconds, default 0): when fewer than `chunk_commands` records are queued, the
  writer waits that long before a write so that the trickle of one-command batches under
  light load shares one transaction instead of paying one each (history may then trail the
  journal by up to `linger`).
- `flush()` waits until everything offered has been written; `stop()` flushes (bounded by a
  grace period) and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from crossbook.history.rows import Rows, State, build
from crossbook.history.store import HistoryStore, StaleWrite
from crossbook.sequencer.ports import Applied

log = logging.getLogger(__name__)

_RAMP = 16
"""The first chunk of a backlog is `chunk_commands // _RAMP` records."""

CatchUp = Callable[[int], Iterator[Sequence[Applied]]]
"""Given the last projected seq, yields every later durable record in order, in batches."""


@dataclass(frozen=True)
class ProjectorStatus:
    head_seq: int
    """The newest sequence number offered to the projector."""
    projected_seq: int
    """The newest sequence number stored in the history database."""
    pending: int
    """Records queued in memory."""
    healthy: bool
    last_error: str
    failures: int
    events_written: int
    catching_up: bool
    gap: bool
    """The database is behind the records offered and no catch-up source can fill the hole."""

    @property
    def lag(self) -> int:
        return max(0, self.head_seq - self.projected_seq)


class Projector:
    def __init__(
        self,
        store: HistoryStore,
        *,
        catch_up: CatchUp | None = None,
        chunk_commands: int = 20_000,
        max_pending: int = 2_000_000,
        retry_initial: float = 0.05,
        retry_max: float = 2.0,
        linger: float = 0.0,
    ) -> None:
        self.store = store
        self.catch_up = catch_up
        self.chunk_commands = chunk_commands
        self.max_pending = max_pending
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.linger = linger
        self.state = State()
        self.stored_seq = 0
        self.head_seq = 0
        self._pending: deque[Applied] = deque()
        self._overflow = False
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._resync = True
        self._opened = False
        self._healthy = True
        self._last_error = ""
        self._failures = 0
        self._events_written = 0
        self._catching_up = False
        self._bulk = False
        self.write_seconds = 0.0

    # The sequencer's side: never blocks, never raises.
    def on_batch(self, batch: Sequence[Applied]) -> None:
        if not batch:
            return
        self.head_seq = batch[-1].seq
        if self._overflow:
            return
        self._pending.extend(batch)
        if self.catch_up is not None and len(self._pending) > self.max_pending:
            self._pending.clear()
            self._overflow = True
        self._wake.set()

    def offer_head(self, seq: int) -> None:
        """Records up to `seq` are durable but were not offered (dropped on the way): with a
        catch-up source the writer fetches them from it. Never blocks, never raises."""
        if seq > self.head_seq:
            self.head_seq = seq
            self._wake.set()

    def status(self) -> ProjectorStatus:
        gap = self.catch_up is None and bool(self._pending) and (
            self._pending[0].seq > self.stored_seq + 1
        )  # fmt: skip
        return ProjectorStatus(
            head_seq=max(self.head_seq, self.stored_seq),
            projected_seq=self.stored_seq,
            pending=len(self._pending),
            healthy=self._healthy,
            last_error=self._last_error,
            failures=self._failures,
            events_written=self._events_written,
            catching_up=self._catching_up,
            gap=gap,
        )

    async def start(self) -> None:
        try:
            await self._open()
        except Exception as exc:  # the writer retries in the background
            self._failed(exc)
        self._task = asyncio.create_task(self._run(), name="history-projector")

    @property
    def opened(self) -> bool:
        return self._opened

    async def _open(self) -> None:
        try:
            await self.store.open()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.store.close()
            raise
        self._opened = True
        await self._load_state()

    async def _load_state(self) -> None:
        self.state = await self.store.load_state()
        self.stored_seq = self.state.last_seq
        self._resync = False

    def _failed(self, exc: Exception) -> None:
        self._resync = True
        self._healthy = False
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"

    async def flush(self) -> None:
        """Wait until everything offered is stored, indexes included (wrap in
        `asyncio.timeout` to bound it)."""
        while self.stored_seq < self.head_seq or self._bulk:
            self._progress.clear()
            await self._progress.wait()

    async def stop(self, grace: float = 10.0) -> None:
        """Flush for at most `grace` seconds, then stop writing and close the store."""
        with contextlib.suppress(TimeoutError):
            if self._task is None:  # never started: nothing is writing
                grace = 0
            async with asyncio.timeout(grace):
                await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.store.close()

    def _needs_catch_up(self) -> bool:
        if self.catch_up is None:
            return False
        if self._overflow:
            return True
        if self._pending:
            return self._pending[0].seq > self.state.last_seq + 1
        return self.head_seq > self.state.last_seq

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            try:
                if not self._opened:
                    await self._open()
                if self._resync:
                    await self._load_state()
                if self._needs_catch_up():
                    await self._catch_up()
                elif self._bulk:
                    await self._end_bulk()
                elif self._pending:
                    if self.linger and len(self._pending) < self.chunk_commands:
                        await asyncio.sleep(self.linger)
                    await self._write_chunk()
                else:
                    self._progress.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._healthy, delay = True, self.retry_initial
            except asyncio.CancelledError:
                raise
            except StaleWrite:
                self._resync = True
            except Exception as exc:  # any store failure: keep the queue, retry
                self._failed(exc)
                log.warning("history write failed, retrying in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)

    async def _end_bulk(self) -> None:
        self._catching_up = True
        try:
            await self.store.secondary_indexes(True)
        finally:
            self._catching_up = False
        self._bulk = False
        self._progress.set()

    async def _write_chunk(self) -> None:
        """Write the queue out, chunk by chunk, building one chunk ahead of the writes."""
        pending = self._pending
        pipe = _Pipeline(self)
        taken = 0  # records at the head of `pending` built and handed to the pipeline
        sizes = self._chunk_sizes()
        try:
            while not self._overflow and len(pending) > taken:
                count = min(len(pending) - taken, next(sizes))
                chunk = list(islice(pending, taken, taken + count))
                taken += count
                done = await pipe.submit(chunk, count)
                taken -= self._pop(done)
            taken -= self._pop(await pipe.finish())
        finally:
            await pipe.abort()

    def _chunk_sizes(self) -> Iterator[int]:
        size = max(1, self.chunk_commands // _RAMP)
        while True:
            yield size
            size = min(size * 2, self.chunk_commands)

    def _pop(self, count: int) -> int:
        pending = self._pending
        if count >= len(pending):  # all of it (an overflow may have emptied the queue)
            count = len(pending)
            pending.clear()
            return count
        for _ in range(count):
            pending.popleft()
        return count

    async def _store_rows(self, rows: Rows) -> None:
        started = time.perf_counter()
        await self.store.write(rows)
        self.write_seconds += time.perf_counter() - started
        self.stored_seq = max(self.stored_seq, rows.last_seq)
        self._events_written += rows.events
        self._progress.set()

    async def _catch_up(self) -> None:
        assert self.catch_up is not None
        before = self.state.last_seq
        self._catching_up = True
        self._overflow = False
        try:
            if before == 0 and not self._bulk:
                await self.store.secondary_indexes(False)
                self._bulk = True
            source = self.catch_up(self.state.last_seq)
            pipe = _Pipeline(self)
            sizes = self._chunk_sizes()
            size = next(sizes)
            try:
                buffer: list[Applied] = []
                while True:
                    batch = await asyncio.to_thread(next, source, None)
                    if batch is None:
                        break
                    buffer.extend(batch)
                    if len(buffer) >= size:
                        await pipe.submit(buffer, 0)
                        buffer, size = [], next(sizes)
                if buffer:
                    await pipe.submit(buffer, 0)
                await pipe.finish()
            finally:
                await pipe.abort()
        finally:
            self._catching_up = False
        while self._pending and self._pending[0].seq <= self.state.last_seq:
            self._pending.popleft()
        if self.state.last_seq == before and self._needs_catch_up():
            raise RuntimeError(f"catch-up source has nothing after seq {before}")


class _Pipeline:
    """Build the next chunk (worker thread) while earlier ones are being written.

    The cyclic garbage collector is paused from the pipeline's creation until `abort()`
    (which its user always calls, when the backlog is written or on a failure). A chunk
    allocates hundreds of thousands of rows, none in a reference cycle (reference counting
    frees them once written): a young-generation collection while they are alive scanned
    every one of them (over 0.1 s of CPU each time, one or two per 100,000 commands), and
    scanning them as they were built cost about a third of the build. Collections resume
    afterwards; cycles made meanwhile wait until then.

    `submit(records, count)` builds rows from the speculative state, folds them into it,
    waits until fewer than the store's `concurrent_writes` writes are in flight, then
    starts this one; it returns the sum of the `count`s given with the writes that
    completed meanwhile (oldest first, 0 when none). `finish()` waits for every write in
    flight and returns the sum of their counts; `abort()` cancels the writes still in
    flight (after a failure)."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self.depth = max(1, projector.store.concurrent_writes)
        self.inflight: deque[tuple[asyncio.Task[None], int]] = deque()
        self.paused = gc.isenabled()
        if self.paused:
            gc.disable()

    async def submit(self, records: Sequence[Applied], count: int) -> int:
        p = self.projector
        rows = await asyncio.to_thread(build, records, p.state)
        p.state.commit(rows)
        if not rows.first_seq:  # nothing new: done once everything before it is
            done = await self.finish() + count
            p._progress.set()
            return done
        done = 0
        while len(self.inflight) >= self.depth:
            done += await self._oldest()
        self.inflight.append((asyncio.create_task(p._store_rows(rows)), count))
        return done

    async def _oldest(self) -> int:
        task, count = self.inflight[0]
        await task  # a failure leaves it queued for `abort`
        self.inflight.popleft()
        return count

    async def finish(self) -> int:
        done = 0
        while self.inflight:
            done += await self._oldest()
        return done

    async def abort(self) -> None:
        tasks = [task for task, _ in self.inflight]
        self.inflight.clear()
        for task in tasks:
            if not task.done():
                task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        if self.paused:
            self.paused = False
            gc.enable()
