"""The history projector in a process of its own, fed over a pipe (what `crossbook serve` runs).

Building history rows is Python work of the same order as matching (tens of microseconds per
command); on the node's process it would take the interpreter lock from the sequencer's
loop. So the node runs the `Projector` in a child process and hands it each durable batch
already folded: `ProjectorProcess` is the sequencer's `Sink`; the child
(`python -m crossbook.history.process TARGET DATA_DIR HEAD_SEQ`) decodes the batches and
projects them exactly as an in-process projector would.

Contract:
- `on_batch` (on the sequencer's loop) queues the batch; `feed_interval` seconds after the
  first queued batch, the queue is encoded once with msgspec and written to the child's
  stdin without waiting: O(batch), no blocking, never raises. (One write per interval, not
  per batch: under a light load each batch holds a command or two, and every write woke
  the child to decode it, CPU taken from the sequencer on a small machine.) When the pipe's
  buffer passes `max_buffer` bytes (the child or its database is slow or gone) it stops
  sending until the buffer is back under a quarter of that; the child sees the seq gap and
  fills it from the journal (the projector's catch-up), so nothing is lost, only re-derived.
- The child writes one JSON status line every `STATUS_INTERVAL` seconds (projected seq,
  pending, health, last error, ...); `status()` combines the latest with this process's own
  head seq, for `/ready` and `/metrics`. Until the first line it reports "starting".
- The child is supervised: if it exits, it is started again (backing off up to 5 s) from
  the node's current head seq and catches up from its database's `last_seq` through the
  journal. If the node dies, the child reads EOF, flushes what it has and exits.
- `store` is a store of this process for reads (`HistoryReader`). `start()` opens it first
  (applying migrations, so the child finds the schema current) and then starts the child;
  a database that cannot be opened yet never fails the start: both keep retrying.
- `flush()` waits until the child reports everything offered as stored; `stop()` closes the
  pipe (the child flushes within its grace period and exits), then closes `store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Final

import msgspec

from crossbook.gc_policy import tune_gc, use_thresholds
from crossbook.history import open_store
from crossbook.history.projector import Projector, ProjectorStatus
from crossbook.history.replay import catch_up_from
from crossbook.history.rows import Rows
from crossbook.history.store import HistoryStore
from crossbook.sequencer.ports import Applied

log = logging.getLogger(__name__)

STATUS_INTERVAL: Final = 0.25
_LENGTH: Final = struct.Struct("<I")
_RESTART_MAX: Final = 5.0
FEED_INTERVAL: Final = 0.01
"""Seconds the node gathers durable batches into one pipe write (history trails by as much
more)."""
LINGER: Final = 0.1
"""Seconds the child's projector waits to gather a light load's batches into one write
(docs/adr/0003-history-process.md: fewer, larger SQLite transactions cost less per order).
Longer is not better for the node: at 0.5 s a transaction's WAL pages are shared by five
times the orders, which halves what the history database writes per order (REST at 1,000
orders/s: 2.0-2.3 KB -> 0.9-1.2 KB, `/proc/PID/io`), and yet the node-side p99 was longer
in 8 of 8 alternating pairs (`bench/rest_orders.py --connections '' --trace` at load 5-10:
24-37 against 27-44 ms, and 16-41 against 21-50 ms), likely from its larger bursts of rows
and writes on the same two cores and disk."""
NICE: Final = 10
"""How much lower the child's CPU priority is than the node's (`CROSSBOOK_HISTORY_NICE`; 0
keeps it equal): when the cores are busy the sequencer's loop runs first and history lags."""


TRACE_ENV: Final = "CROSSBOOK_LATENCY_TRACE"
"""Set (to the node's trace file, `crossbook.node`): the child writes the times of its
database writes to that name plus `.history` when it exits."""


class ChildStatus(msgspec.Struct, frozen=True):
    opened: bool
    status: ProjectorStatus


class ProjectorProcess:
    def __init__(
        self, target: str, data_dir: Path, *, max_buffer: int = 64 << 20, grace: float = 10.0,
        feed_interval: float = FEED_INTERVAL,
    ) -> None:
        self.target = target
        self.feed_interval = feed_interval
        self.data_dir = Path(data_dir)
        self.max_buffer = max_buffer
        self.grace = grace
        self.store: HistoryStore = open_store(target, pool_size=2)
        self.head_seq = 0
        self.restarts = 0
        self.dropped_batches = 0
        self._child: ChildStatus | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stdin: asyncio.StreamWriter | None = None
        self._dropping = False
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()
        self._encode = msgspec.msgpack.Encoder().encode
        self._queued: list[Applied] = []
        self._feed: asyncio.TimerHandle | None = None
        self._ticker: asyncio.Task[None] | None = None

    # -- the sequencer's side ------------------------------------------------------------------

    def on_batch(self, batch: Sequence[Applied]) -> None:
        if not batch:
            return
        self.head_seq = batch[-1].seq
        writer = self._stdin
        if writer is None or writer.is_closing():
            self._queued.clear()
            return  # (re)starting: the child catches up from the journal
        buffered = writer.transport.get_write_buffer_size()
        if self._dropping:
            if buffered > self.max_buffer // 4:
                self.dropped_batches += 1
                return
            self._dropping = False
        elif buffered > self.max_buffer:
            log.warning("history process is behind by %d bytes: it will catch up from the "
                        "journal", buffered)
            self._dropping = True
            self.dropped_batches += 1
            return
        self._queued += batch
        if self._feed is None:
            self._feed = asyncio.get_running_loop().call_later(self.feed_interval, self._flush)

    def _flush(self) -> None:
        """Write the queued batches as one message (the child projects them as one batch)."""
        if self._feed is not None:
            self._feed.cancel()
            self._feed = None
        queued, self._queued = self._queued, []
        writer = self._stdin
        if queued and writer is not None and not writer.is_closing():
            self._send(queued)

    def _send(self, message: Sequence[Applied] | int) -> None:
        assert self._stdin is not None
        payload = self._encode(message)
        self._stdin.transport.write(_LENGTH.pack(len(payload)) + payload)

    async def _tell_head(self) -> None:
        """After dropping, tell the child how far the journal goes once the pipe drains (it
        would otherwise learn of a dropped tail only from the next batch)."""
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            writer = self._stdin
            if not self._dropping or writer is None or writer.is_closing():
                continue
            if writer.transport.get_write_buffer_size() <= self.max_buffer // 4:
                self._dropping = False
                self._flush()
                self._send(self.head_seq)

    # -- status --------------------------------------------------------------------------------

    def status(self) -> ProjectorStatus:
        child = self._child
        if child is None:
            return ProjectorStatus(
                head_seq=self.head_seq, projected_seq=0, pending=0, healthy=False,
                last_error="history process starting", failures=self.restarts,
                events_written=0, catching_up=False, gap=False,
            )  # fmt: skip
        s = child.status
        return replace(
            s, head_seq=max(self.head_seq, s.projected_seq), healthy=s.healthy and child.opened,
            failures=s.failures + self.restarts,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._reader_task = await open_reader(self.store)
        proc = await self._spawn()  # batches offered after `start` reach the child
        self._supervisor = asyncio.create_task(self._supervise(proc), name="history-process")
        self._ticker = asyncio.create_task(self._tell_head(), name="history-head")

    async def flush(self) -> None:
        """Wait until the child has stored everything offered so far."""
        self._flush()
        target = self.head_seq
        while self._child is None or self._child.status.projected_seq < target:
            self._progress.clear()
            await self._progress.wait()

    async def stop(self, grace: float | None = None) -> None:
        grace = self.grace if grace is None else grace
        self._stopping = True
        self._flush()
        writer, proc = self._stdin, self._proc
        if writer is not None and not writer.is_closing():
            writer.close()  # EOF: the child flushes and exits
        if proc is not None and proc.returncode is None:
            try:
                async with asyncio.timeout(grace + 5.0):
                    await proc.wait()
            except TimeoutError:
                log.warning("history process did not stop in time: killed")
                proc.kill()
                await proc.wait()
        for task in (self._ticker, self._supervisor):
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
        with contextlib.suppress(Exception):
            await self.store.close()

    async def _spawn(self) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "crossbook.history.process",
            self.target, str(self.data_dir), str(self.head_seq), str(self.grace),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self._proc, self._stdin, self._dropping = proc, proc.stdin, False
        self._queued.clear()  # offered to the previous child: this one reads them from the journal
        return proc

    async def _supervise(self, proc: asyncio.subprocess.Process) -> None:
        delay = 0.2
        while True:
            started = time.monotonic()
            assert proc.stdout is not None
            try:
                async for line in proc.stdout:
                    self._child = msgspec.json.decode(line, type=ChildStatus)
                    self._progress.set()
            finally:
                self._stdin = None
            code = await proc.wait()
            if self._stopping:
                return
            self.restarts += 1
            if time.monotonic() - started > 30:
                delay = 0.2
            log.warning("history process exited with %s; restarting in %.1fs", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RESTART_MAX)
            if self._stopping:
                return
            proc = await self._spawn()

async def open_reader(store: HistoryStore) -> asyncio.Task[None] | None:
    """Open `store` for reads now; if the database does not answer yet (PostgreSQL not up),
    return the background task that keeps trying, so a start never fails on it."""
    try:
        await store.open()
    except Exception as exc:
        log.warning("history reader cannot open the database: %s", exc)
        with contextlib.suppress(Exception):
            await store.close()
        return asyncio.create_task(_open_eventually(store), name="history-reader")
    return None


async def _open_eventually(store: HistoryStore) -> None:
    """Open `store`, retrying with backoff (up to 5 s apart) until the database answers."""
    delay = 0.2
    while True:
        await asyncio.sleep(delay)
        try:
            await store.open()
        except Exception as exc:  # not up yet, or gone again: keep trying
            log.warning("history reader cannot open the database: %s", exc)
            with contextlib.suppress(Exception):
                await store.close()
            delay = min(delay * 2, _RESTART_MAX)
            continue
        return


# -- the child ---------------------------------------------------------------------------------


def _timed(store: HistoryStore, writes: list[tuple[int, int, int]]) -> HistoryStore:
    """`store` with each `write` recorded as (start, end, commands), perf_counter_ns."""
    inner = store.write

    async def write(rows: Rows) -> None:
        started = time.perf_counter_ns()
        await inner(rows)
        writes.append((started, time.perf_counter_ns(), rows.last_seq - rows.prev_seq))

    store.write = write  # type: ignore[method-assign]
    return store


def _dump(path: Path, writes: list[tuple[int, int, int]]) -> None:
    path.write_bytes(msgspec.json.encode(writes))


async def _child(target: str, data_dir: Path, head_seq: int, grace: float) -> int:
    store = open_store(target, rederivable=True)
    trace_path = os.environ.get(TRACE_ENV)
    writes: list[tuple[int, int, int]] = []
    if trace_path:
        store = _timed(store, writes)
    projector = Projector(store, catch_up=catch_up_from(data_dir), linger=LINGER)
    projector.head_seq = head_seq
    use_thresholds()  # the node's collector policy: rows are many short-lived containers
    await projector.start()
    tune_gc()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    decode = msgspec.msgpack.Decoder(list[Applied] | int).decode
    out = sys.stdout.buffer

    async def report() -> None:
        while True:
            status = ChildStatus(projector.opened, projector.status())
            out.write(msgspec.json.encode(status) + b"\n")
            out.flush()
            await asyncio.sleep(STATUS_INTERVAL)

    reporter = asyncio.create_task(report())
    try:
        while True:
            try:
                (size,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
                payload = await reader.readexactly(size)
            except asyncio.IncompleteReadError:
                break  # the node closed the pipe (stopping, or gone)
            message = decode(payload)
            if isinstance(message, int):  # batches up to this seq were dropped: catch up
                projector.offer_head(message)
            else:
                projector.on_batch(message)
    finally:
        await projector.stop(grace)
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        if trace_path:
            _dump(Path(trace_path + ".history"), writes)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    target, data_dir, head_seq, grace = args[0], Path(args[1]), int(args[2]), float(args[3])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    os.nice(int(os.environ.get("CROSSBOOK_HISTORY_NICE", NICE)))
    try:
        import uvloop  # noqa: PLC0415 (optional speed-up, as the node uses)
    except ImportError:  # pragma: no cover
        return asyncio.run(_child(target, data_dir, head_seq, grace))
    return uvloop.run(_child(target, data_dir, head_seq, grace))


if __name__ == "__main__":
    sys.exit(main())
